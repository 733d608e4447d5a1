"""The four stages overlapped: read -> preprocess -> predict -> write run at once, joined by bounded queues.

The shard moves in steps: consecutive row groups grouped to at least `handler.step_batches`
batches of rows (`reader.plan_steps`). Reader and writer are threads, preprocess is a small pool,
the forward pass runs in the main thread (so SIGTERM is seen between batches). Memory is bounded by
the queue depths in `tuning` times the step size, never by shard size.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import pyarrow as pa

from nightshard_worker import output_files, tuning
from nightshard_worker.batch_scorer import BatchScorer
from nightshard_worker.checkpoint import Checkpoint
from nightshard_worker.contract import ShardSpec
from nightshard_worker.handlers.base import ModelHandler, PreparedRows
from nightshard_worker.metrics import StageClock, WorkerMetrics
from nightshard_worker.preprocess import PreprocessThread
from nightshard_worker.reader import ReaderThread, ReadStep, Unit, plan_steps, read_columns
from nightshard_worker.stage_queue import END, StageFailure, depth, get_unless_stopped
from nightshard_worker.writer import ScoredStep, WriterThread

try:
    # Imported when scoring starts, on purpose: where pandas is installed, pyarrow imports it lazily the
    # first time pa.array() sees a numpy array, i.e. in the middle of the first row group, on the predict
    # thread, holding the import lock for ~0.5 s while the device waits.
    import pandas  # noqa: F401
except ImportError:  # the worker image has no pandas, and then pyarrow has nothing to import later
    pass


class OverlappedStages:
    """Scores units[start:] and commits them, all four stages at work at once; `run()` returns False
    when stopped by SIGTERM."""

    def __init__(self, *, spec: ShardSpec, handler: ModelHandler, scorer: BatchScorer, units: list[Unit],
                 start_unit: int, id_field: pa.Field, checkpoint: Checkpoint, metrics: WorkerMetrics,
                 clock: StageClock, stop: threading.Event):
        self.spec = spec
        self.handler = handler
        self.scorer = scorer
        self.steps = plan_steps(units[start_unit:], spec.runtime.batch_size * handler.step_batches)
        self.metrics = metrics
        self.stop = stop
        self.output_schema = output_files.output_schema(id_field, handler.output_fields)
        self.quarantine_schema = output_files.quarantine_schema(id_field)
        self.read_queue: queue.Queue = queue.Queue(tuning.READ_QUEUE_STEPS)
        self.prepared_queue: queue.Queue = queue.Queue(tuning.PREPARED_QUEUE_STEPS)
        self.write_queue: queue.Queue = queue.Queue(tuning.WRITE_QUEUE_STEPS)
        self.reader = ReaderThread(steps=self.steps, columns=read_columns(spec, handler.required_columns),
                                   out=self.read_queue, stop=stop, clock=clock)
        self.preprocessor = PreprocessThread(handler=handler, workers=spec.runtime.preprocess_workers,
                                             source=self.read_queue, out=self.prepared_queue, stop=stop, clock=clock)
        self.writer = WriterThread(checkpoint=checkpoint, commit_every=spec.runtime.commit_every_row_groups,
                                   commit_interval=spec.runtime.commit_interval_seconds, source=self.write_queue,
                                   clock=clock)
        self.rows_scored_this_attempt = 0
        self.tokens_this_attempt = 0  # llm handler: input + output tokens scored since this attempt began

    def queue_depths(self) -> str:
        return (f"read:{depth(self.read_queue)},prep:{depth(self.prepared_queue)},"
                f"write:{depth(self.write_queue)}")

    def run(self) -> bool:
        self.reader.start()
        self.preprocessor.start()
        self.writer.start()
        try:
            while True:
                item = get_unless_stopped(self.prepared_queue, self.stop)
                if item is END:
                    break
                if isinstance(item, StageFailure):
                    raise item.error
                read_step, future = item
                prepared = self._wait(future)
                if prepared is None:
                    break
                outputs = self.scorer.score(prepared, read_step.step.where)
                if outputs is None:
                    break  # stopped between batches: this step is redone on resume
                self._hand_to_writer(self._scored_step(read_step, prepared, outputs))
                self.rows_scored_this_attempt += read_step.table.num_rows
        finally:
            completed = not self.stop.is_set()
            self.stop.set()  # the reader and decoders wind down; the writer still drains its queue
            self._finish_writer()
        return completed

    def _wait(self, future: Future) -> PreparedRows | None:
        while not self.stop.is_set():
            try:
                return future.result(timeout=tuning.QUEUE_POLL_SECONDS)
            except FutureTimeout:
                continue
        return None

    def _hand_to_writer(self, scored: ScoredStep) -> None:
        while True:
            self._raise_if_writer_failed()
            try:
                self.write_queue.put(scored, timeout=tuning.QUEUE_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _finish_writer(self) -> None:
        while self.writer.is_alive():
            try:
                self.write_queue.put(END, timeout=tuning.QUEUE_POLL_SECONDS)
                break
            except queue.Full:
                continue
        self.writer.join()
        self._raise_if_writer_failed()

    def _raise_if_writer_failed(self) -> None:
        if self.writer.error is not None:
            raise self.writer.error

    def _scored_step(self, read_step: ReadStep, prepared: PreparedRows,
                     outputs: dict[str, np.ndarray]) -> ScoredStep:
        table, units = read_step.table, read_step.step.units
        ids = table.column(self.spec.id_column)
        output = pa.Table.from_arrays(
            [ids.take(pa.array(prepared.good_rows, pa.int64())), *self.handler.to_arrow(outputs)]
            if prepared.good_count else [ids.slice(0, 0), *self._empty_outputs()],
            schema=self.output_schema,
        )
        bad_rows = np.array(sorted(prepared.bad_rows), dtype=np.int64)
        # Step row -> (row group, row in it): the quarantine names the row where the input has it.
        unit_starts = np.cumsum([0] + [unit.rows for unit in units[:-1]])
        unit_of_row = np.searchsorted(unit_starts, bad_rows, side="right") - 1
        quarantine = pa.Table.from_arrays(
            [
                ids.take(pa.array(bad_rows, pa.int64())),
                pa.array([prepared.bad_rows[int(row)] for row in bad_rows], pa.string()),
                pa.array([units[i].source_file for i in unit_of_row], pa.string()),
                pa.array([units[i].row_group for i in unit_of_row], pa.int32()),
                pa.array(bad_rows - unit_starts[unit_of_row], pa.int32()),
            ],
            schema=self.quarantine_schema,
        )
        for kind in ("input", "output"):
            if f"{kind}_tokens" in outputs:  # llm handler: tokens are the unit of speed and cost
                tokens = int(np.asarray(outputs[f"{kind}_tokens"], dtype=np.int64).sum())
                self.metrics.tokens.labels(kind=kind).inc(tokens)
                self.tokens_this_attempt += tokens
        self.metrics.rows.labels(outcome="scored").inc(output.num_rows)
        self.metrics.rows.labels(outcome="quarantined").inc(quarantine.num_rows)
        return ScoredStep(step=read_step.step, output=output, quarantine=quarantine,
                          histogram_counts=self._histogram(outputs, prepared.good_count))

    def _empty_outputs(self) -> list[pa.Array]:
        return [pa.array([], type=output_field.type) for output_field in self.handler.output_fields]

    def _histogram(self, outputs: dict[str, np.ndarray], good_count: int) -> np.ndarray:
        edges = np.asarray(self.handler.drift_edges, dtype=np.float64)
        if good_count == 0:
            return np.zeros(len(edges) - 1, dtype=np.int64)
        values = np.asarray(self.handler.drift_values(outputs), dtype=np.float64)
        values = np.clip(values[np.isfinite(values)], edges[0], edges[-1])  # out of range -> end bins
        counts, _ = np.histogram(values, bins=edges)
        return counts
