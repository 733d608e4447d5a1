"""Commit cadence: whole steps, at least N row groups and at least S seconds, early at the memory cap."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
from conftest import (
    FEATURES,
    make_spec,
    output_ids,
    progress_record,
    save_spec,
    start_worker,
    tabular_table,
    write_parquet,
)

from nightshard_worker.checkpoint import Checkpoint, read_chunk
from nightshard_worker.contract import EXIT_OK, ModelSpec
from nightshard_worker.metrics import StageClock
from nightshard_worker.reader import Step, Unit
from nightshard_worker.stage_queue import END
from nightshard_worker.writer import ScoredStep, WriterThread

ROWS_PER_UNIT = 10


class ScriptedSource:
    """The writer's queue with a clock: taking a step first moves the clock by that step's seconds.

    The writer runs in the test's thread (`run()`, not `start()`), so every cadence decision is
    made on these seconds alone, whatever the machine's load.
    """

    def __init__(self, steps_and_seconds: list[tuple[ScoredStep, float]]):
        self.items = list(steps_and_seconds)
        self.seconds = 0.0

    def now(self) -> float:
        return self.seconds

    def get(self):
        if not self.items:
            return END
        scored, seconds = self.items.pop(0)
        self.seconds += seconds
        return scored


def scored_step(unit: int) -> ScoredStep:
    """The scored rows of one row group: ROWS_PER_UNIT ids from unit x ROWS_PER_UNIT, none quarantined."""
    ids = np.arange(unit * ROWS_PER_UNIT, (unit + 1) * ROWS_PER_UNIT, dtype=np.int64)
    output = pa.table({"id": ids, "score": pa.array(np.full(len(ids), 0.5, np.float32))})
    quarantine = pa.table({"id": pa.array([], pa.int64()), "reason": pa.array([], pa.string())})
    step = Step((Unit(index=unit, source_file="in.parquet", row_group=unit, rows=ROWS_PER_UNIT),))
    return ScoredStep(step=step, output=output, quarantine=quarantine, histogram_counts=np.array([len(ids), 0]))


def run_writer(tmp_path, steps_and_seconds: list[tuple[ScoredStep, float]], commit_every: int,
               commit_interval: float, max_uncommitted_bytes: int = 1 << 30) -> tuple[list[tuple[int, int]], Checkpoint]:
    """Writes the steps, each arriving its seconds after the one before; returns the committed unit ranges."""
    checkpoint = Checkpoint(directory=str(tmp_path / "checkpoint"), fingerprint="fingerprint", histogram_bins=2)
    checkpoint.start()
    source = ScriptedSource(steps_and_seconds)
    writer = WriterThread(checkpoint=checkpoint, commit_every=commit_every, commit_interval=commit_interval,
                          source=source, clock=StageClock(),
                          max_uncommitted_bytes=max_uncommitted_bytes, now=source.now)
    writer.run()
    assert writer.error is None
    return [(chunk.first_unit, chunk.end_unit) for chunk in checkpoint.progress.chunks], checkpoint


def watch_progress(process, spec) -> list[tuple[float, dict]]:
    """Every progress record the worker wrote that this test saw, with when it saw it, until it exits."""
    seen = []
    while process.poll() is None:
        record = progress_record(spec)  # None: not written yet, or removed after the merge
        if record is not None:
            seen.append((time.monotonic(), record))
        time.sleep(0.005)
    return seen


def test_a_commit_waits_for_the_interval_then_covers_every_step_scored_since(tmp_path):
    # Steps every 0.4 s against a 1 s interval: a commit at 1.2 s (3 steps), 2.4 s (3 steps), END (1).
    steps = [(scored_step(unit), 0.4) for unit in range(7)]
    chunks, checkpoint = run_writer(tmp_path, steps, commit_every=1, commit_interval=1.0)
    assert chunks == [(0, 3), (3, 6), (6, 7)]
    assert checkpoint.progress.rows_out == 70 and checkpoint.progress.histogram_counts == [70, 0]
    rows = [read_chunk(uri).column("id").to_pylist() for uri in checkpoint.output_chunks()]
    assert sum(rows, []) == list(range(70))


def test_interval_zero_commits_every_step_and_row_groups_still_set_a_minimum(tmp_path):
    steps = [(scored_step(unit), 0.0) for unit in range(5)]
    assert run_writer(tmp_path / "every", steps, commit_every=1, commit_interval=0.0)[0] == \
        [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    # Slow steps (5 s each, past the interval) still wait for 2 row groups.
    slow = [(scored_step(unit), 5.0) for unit in range(5)]
    assert run_writer(tmp_path / "groups", slow, commit_every=2, commit_interval=1.0)[0] == [(0, 2), (2, 4), (4, 5)]


def test_the_memory_cap_commits_before_the_interval(tmp_path):
    step_bytes = scored_step(0).output.nbytes + scored_step(0).quarantine.nbytes
    steps = [(scored_step(unit), 0.0) for unit in range(6)]
    chunks, _ = run_writer(tmp_path, steps, commit_every=1, commit_interval=3600.0,
                           max_uncommitted_bytes=2 * step_bytes)
    assert chunks == [(0, 2), (2, 4), (4, 6)]


def test_a_fast_shard_with_the_default_interval_commits_once_at_the_end(tmp_path, tabular_artifact):
    """The whole shard scores inside the default 10 s interval: one chunk, committed at the end."""
    model = ModelSpec(handler="tabular", version="1", artifact=str(tabular_artifact),
                      options={"feature_columns": FEATURES})
    inputs = [write_parquet(tmp_path / "in.parquet", tabular_table(2000), 100)]  # 20 row groups
    spec = make_spec(tmp_path, inputs, model, batch_size=50)  # steps of 200 rows: 10 of them
    assert spec.runtime.commit_interval_seconds == 10.0
    process = start_worker(save_spec(spec, tmp_path))
    records = watch_progress(process, spec)

    assert process.returncode == EXIT_OK, process.stdout.read()
    chunk_lists = [[(c["first_unit"], c["end_unit"]) for c in record["chunks"]] for _, record in records]
    assert all(chunks in ([], [(0, 20)]) for chunks in chunk_lists), chunk_lists
    assert output_ids(spec) == list(range(2000))


def test_commits_of_a_slow_model_are_at_least_the_interval_apart(tmp_path, tabular_artifact):
    interval = 1.0
    model = ModelSpec(handler="worker_test_handlers:SlowTabularHandler", version="1", artifact=str(tabular_artifact),
                      options={"feature_columns": FEATURES, "delay_seconds": 0.05})
    inputs = [write_parquet(tmp_path / "in.parquet", tabular_table(2400), 50)]  # 48 row groups
    # batch 25 x step_batches 4 = 100 rows: a step is two 50-row groups and 4 forward passes (>= 0.2 s),
    # 24 steps in all, >= 4.8 s
    spec = make_spec(tmp_path, inputs, model, batch_size=25, commit_interval_seconds=interval)
    process = start_worker(save_spec(spec, tmp_path))
    seen_at: dict[int, float] = {}  # units committed -> when this test first saw it
    for seen, record in watch_progress(process, spec):
        seen_at.setdefault(record["units_committed"], seen)

    assert process.returncode == EXIT_OK, process.stdout.read()
    commits = sorted((seconds, units) for units, seconds in seen_at.items() if units > 0)
    assert len(commits) >= 4, commits  # at least one a second, and the rest at the end
    gaps = [later - earlier for (earlier, _), (later, _) in zip(commits, commits[1:])]
    # Each commit but the last (END) waited for the interval; a commit per step would come every
    # ~0.2 s. The margin is for this test seeing a record late on a busy machine.
    assert all(gap >= interval - 0.3 for gap in gaps[:-1]), gaps
    assert output_ids(spec) == list(range(2400))
