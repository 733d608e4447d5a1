"""Write stage: scored steps -> committed checkpoint chunks, every N row groups, in order."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from nightshard_worker.checkpoint import Checkpoint
from nightshard_worker.metrics import StageClock
from nightshard_worker.reader import Step
from nightshard_worker.stage_queue import END


@dataclass
class ScoredStep:
    """One step's outcome: scored rows (input order) and quarantined rows with reasons."""

    step: Step
    output: pa.Table
    quarantine: pa.Table
    histogram_counts: np.ndarray


class WriterThread(threading.Thread):
    """Drains its queue until END, even after SIGTERM: every scored step gets committed.

    A commit covers whole steps and at least `commit_every` row groups (a step may hold several).
    """

    def __init__(self, checkpoint: Checkpoint, commit_every: int, source: queue.Queue, clock: StageClock):
        super().__init__(name="writer", daemon=True)
        self.checkpoint = checkpoint
        self.commit_every = max(1, commit_every)
        self.source = source
        self.clock = clock
        self.error: BaseException | None = None
        self._pending: list[ScoredStep] = []

    def run(self) -> None:
        try:
            while True:
                item = self.source.get()
                if item is END:
                    self._commit_pending()
                    return
                self._pending.append(item)
                if sum(len(scored.step.units) for scored in self._pending) >= self.commit_every:
                    self._commit_pending()
        except BaseException as error:  # the main thread reads it and fails the shard
            self.error = error

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
        self._pending = []
        self.clock.add("write", time.perf_counter() - started)
