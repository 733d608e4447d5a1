"""Write stage: scored steps -> committed checkpoint chunks, in order, at the spec's cadence."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from nightshard_worker import tuning
from nightshard_worker.checkpoint import Checkpoint
from nightshard_worker.metrics import StageClock
from nightshard_worker.reader import Step
from nightshard_worker.stage_queue import END


@dataclass(kw_only=True)
class ScoredStep:
    """One step's outcome: scored rows (input order) and quarantined rows with reasons."""

    step: Step
    output: pa.Table
    quarantine: pa.Table
    histogram_counts: np.ndarray


class WriterThread(threading.Thread):
    """Drains its queue until END, even after SIGTERM: every scored step gets committed.

    A commit covers whole steps, at least `commit_every` row groups and at least `commit_interval`
    seconds since the previous commit (or since the writer was made), so a model that scores a step in
    milliseconds does not pay a commit (object-store puts, fsyncs) per step. The uncommitted steps
    are held in memory: once their tables reach `max_uncommitted_bytes` they are committed whatever
    the cadence says, so memory stays bounded on a fast device.
    """

    def __init__(self, *, checkpoint: Checkpoint, commit_every: int, commit_interval: float, source: queue.Queue,
                 clock: StageClock, max_uncommitted_bytes: int = tuning.MAX_UNCOMMITTED_BYTES,
                 now: Callable[[], float] = time.monotonic):
        super().__init__(name="writer", daemon=True)
        self.checkpoint = checkpoint
        self.commit_every = max(1, commit_every)
        self.commit_interval = max(0.0, commit_interval)
        self.max_uncommitted_bytes = max_uncommitted_bytes
        self.source = source
        self.clock = clock
        self.error: BaseException | None = None
        self._now = now
        self._pending: list[ScoredStep] = []
        self._pending_units = 0
        self._pending_bytes = 0
        self._last_commit = now()

    def run(self) -> None:
        try:
            while True:
                item = self.source.get()
                if item is END:
                    self._commit_pending()
                    return
                self._pending.append(item)
                self._pending_units += len(item.step.units)
                self._pending_bytes += item.output.nbytes + item.quarantine.nbytes
                if self._commit_due():
                    self._commit_pending()
        except BaseException as error:  # the main thread reads it and fails the shard
            self.error = error

    def _commit_due(self) -> bool:
        if self._pending_bytes >= self.max_uncommitted_bytes:
            return True
        if self._pending_units < self.commit_every:
            return False
        return self._now() - self._last_commit >= self.commit_interval

    def _commit_pending(self) -> None:
        if not self._pending:
            return
        started = time.perf_counter()
        steps = self._pending
        counts = np.sum([scored.histogram_counts for scored in steps], axis=0)
        self.checkpoint.commit(
            first_unit=steps[0].step.units[0].index,
            end_unit=steps[-1].step.units[-1].index + 1,
            output=pa.concat_tables([scored.output for scored in steps]),
            quarantine=pa.concat_tables([scored.quarantine for scored in steps]),
            histogram_counts=[int(count) for count in counts],
        )
        self._pending, self._pending_units, self._pending_bytes = [], 0, 0
        self._last_commit = self._now()
        self.clock.add("write", time.perf_counter() - started)
