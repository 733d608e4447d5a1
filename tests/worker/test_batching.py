"""Batch planning, order restoration and halving on out-of-memory."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import FEATURES, make_spec, read_result, run_worker, save_spec, tabular_table, write_parquet

from nightshard_worker.batch_scorer import BatchScorer
from nightshard_worker.batching import plan_batches
from nightshard_worker.contract import EXIT_FAILED, EXIT_OK, ModelSpec, RuntimeSpec
from nightshard_worker.handlers.base import ModelHandler, PreparedRows
from nightshard_worker.metrics import StageClock, WorkerMetrics


@pytest.mark.parametrize("row_count,max_rows", [(0, 4), (1, 4), (10, 4), (12, 4)])
def test_plain_batches_cover_rows_in_order_under_max_rows(row_count, max_rows):
    batches = plan_batches(row_count, max_rows)
    assert np.concatenate(batches or [np.array([], int)]).tolist() == list(range(row_count))
    assert all(len(batch) <= max_rows for batch in batches)


def test_token_budget_batches_pack_similar_lengths_under_the_budget():
    lengths = np.array([5, 100, 6, 90, 7, 300, 8])
    batches = plan_batches(len(lengths), max_rows=3, lengths=lengths, max_tokens=200)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 200
    assert [5] in [batch.tolist() for batch in batches]  # longer than the budget: alone


class LengthEcho(ModelHandler):
    """Returns each row's length: scattered outputs must line up with the input rows."""

    def __init__(self):
        pass

    def predict(self, batch):
        return {"length": batch["lengths"].clone()}


def test_token_budget_batching_restores_input_order():
    lengths = np.array([30, 3, 17, 3, 50, 8, 21, 1, 9, 44])
    prepared = PreparedRows(tensors={"lengths": torch.from_numpy(lengths)}, good_rows=np.arange(10),
                            lengths=lengths)
    scorer = BatchScorer(handler=LengthEcho(), runtime=RuntimeSpec(batch_size=3, max_batch_tokens=60),
                         device=torch.device("cpu"), metrics=WorkerMetrics(), clock=StageClock(), stop=threading.Event())
    outputs = scorer.score(prepared, "test row group")
    assert outputs["length"].tolist() == lengths.tolist()


def oom_spec(tmp_path, artifact, oom_above_rows: int):
    model = ModelSpec(handler="worker_test_handlers:OutOfMemoryAboveHandler", version="1", artifact=str(artifact),
                      options={"feature_columns": FEATURES, "oom_above_rows": oom_above_rows})
    input_slice = write_parquet(tmp_path / "in.parquet", tabular_table(500), 250)
    return make_spec(tmp_path, [input_slice], model, batch_size=128)


def test_out_of_memory_batches_are_halved_until_they_fit(tmp_path, tabular_artifact):
    spec = oom_spec(tmp_path, tabular_artifact, oom_above_rows=20)

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    assert "out of device memory on a batch of 128 rows, retrying as 64 + 64" in completed.stdout
    assert pq.read_table(spec.output_path).column("id").to_pylist() == list(range(500))


def test_a_single_row_that_runs_out_of_memory_fails_the_shard_clearly(tmp_path, tabular_artifact):
    spec = oom_spec(tmp_path, tabular_artifact, oom_above_rows=0)

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_FAILED
    assert "a single row runs the device out of memory" in read_result(spec).error


class RecordingQueue:
    """Stands in for a CUDA stream: the handler queues batches, the host waits on each one's event."""

    def __init__(self):
        self.log: list[str] = []
        self.queued = 0

    def queue(self) -> None:
        self.log.append(f"queue {self.queued}")
        self.queued += 1

    def event(self) -> SimpleNamespace:
        batch = self.queued - 1
        return SimpleNamespace(synchronize=lambda: self.log.append(f"wait {batch}"))


class QueueingEcho(ModelHandler):
    """Doubles each row's value; the queue attempts in `oom_on` run out of memory (above one row)."""

    def __init__(self, queue: RecordingQueue, oom_on: tuple[int, ...] = ()):
        self.queue, self.oom_on, self.attempts = queue, oom_on, 0

    def predict(self, batch):
        attempt, self.attempts = self.attempts, self.attempts + 1
        if attempt in self.oom_on and len(batch["values"]) > 1:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (test): attempt {attempt}")
        self.queue.queue()
        return {"value": batch["values"] * 2}


def queued_scorer(monkeypatch, handler: QueueingEcho, batch_size: int) -> BatchScorer:
    monkeypatch.setattr("nightshard_worker.device.copy_done_event", lambda device: handler.queue.event())
    return BatchScorer(handler=handler, runtime=RuntimeSpec(batch_size=batch_size), device=torch.device("cpu"),
                       metrics=WorkerMetrics(), clock=StageClock(), stop=threading.Event())


def values_prepared(count: int) -> PreparedRows:
    return PreparedRows(tensors={"values": torch.arange(count)}, good_rows=np.arange(count))


def test_the_next_batch_is_queued_before_the_host_waits_for_the_previous_one(monkeypatch):
    queue = RecordingQueue()

    outputs = queued_scorer(monkeypatch, QueueingEcho(queue), batch_size=4).score(values_prepared(10), "test")

    # Batches of 4, 4 and 2 rows: the device holds the next batch while the host reads the last.
    assert queue.log == ["queue 0", "queue 1", "wait 0", "queue 2", "wait 1", "wait 2"]
    assert outputs["value"].tolist() == [2 * value for value in range(10)]


def test_out_of_memory_with_a_batch_in_flight_keeps_every_row_in_order(monkeypatch):
    queue = RecordingQueue()
    scorer = queued_scorer(monkeypatch, QueueingEcho(queue, oom_on=(1,)), batch_size=4)

    outputs = scorer.score(values_prepared(12), "test")

    # Rows 4-7 run out of memory while rows 0-3 are in flight: those are read back first, then
    # 4-5 and 6-7 are scored one after the other, then 8-11 as usual.
    assert queue.log == ["queue 0", "wait 0", "queue 1", "wait 1", "queue 2", "wait 2", "queue 3", "wait 3"]
    assert outputs["value"].tolist() == [2 * value for value in range(12)]
    assert scorer.oom_splits == 1
