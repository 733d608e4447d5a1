"""Batch planning, order restoration and halving on out-of-memory."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import FEATURES, make_spec, read_result, run_worker, save_spec, tabular_table, write_parquet
from nightshard_worker.batching import plan_batches
from nightshard_worker.contract import EXIT_FAILED, EXIT_OK, ModelSpec, RuntimeSpec
from nightshard_worker.handlers.base import ModelHandler, PreparedRows
from nightshard_worker.metrics import StageClock, WorkerMetrics
from nightshard_worker.predict import Predictor


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
    predictor = Predictor(LengthEcho(), RuntimeSpec(batch_size=3, max_batch_tokens=60), torch.device("cpu"),
                          WorkerMetrics(), StageClock(), threading.Event())
    outputs = predictor.score(prepared, "test row group")
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
