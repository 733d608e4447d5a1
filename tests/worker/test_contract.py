"""The DAG-worker contract's own decisions, asked by both sides: is a shard already done."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import make_spec

from nightshard_worker.contract import (
    STATUS_FAILED,
    STATUS_PREEMPTED,
    STATUS_SUCCEEDED,
    InputSlice,
    ModelSpec,
    ShardResult,
)

SPEC = make_spec(Path("/data"), [InputSlice(path="/data/in.parquet", row_groups=(0, 1), rows=200)],
                 ModelSpec(handler="tabular", version="v1", options={"feature_columns": ["f0"]}))


@pytest.mark.parametrize("status, fingerprint_of, completes", [
    (STATUS_SUCCEEDED, SPEC, True),
    # a rerun by another DAG run, with other reporting settings, still finds the shard done
    (STATUS_SUCCEEDED, dataclasses.replace(SPEC, run_id="scheduled__2", runtime=dataclasses.replace(
        SPEC.runtime, batch_size=64, progress_interval_seconds=1.0)), True),
    (STATUS_FAILED, SPEC, False),
    (STATUS_PREEMPTED, SPEC, False),
    (STATUS_SUCCEEDED, dataclasses.replace(SPEC, model=dataclasses.replace(SPEC.model, version="v2")), False),
    (STATUS_SUCCEEDED, dataclasses.replace(SPEC, inputs=(dataclasses.replace(SPEC.inputs[0], row_groups=(0,)),)),
     False),
    (STATUS_SUCCEEDED, dataclasses.replace(SPEC, id_column="customer_id"), False),
])
def test_a_result_completes_a_spec_only_when_it_succeeded_with_the_same_fingerprint(status, fingerprint_of,
                                                                                     completes):
    result = ShardResult(shard_id=SPEC.shard_id, status=status, spec_fingerprint=fingerprint_of.fingerprint())
    assert result.completes(SPEC) is completes
    assert ShardResult.from_json(result.to_json()).completes(SPEC) is completes
