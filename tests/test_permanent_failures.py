"""Errors a retry cannot fix fail their task at once (AirflowFailException: no retries, no retry delay);
errors a retry may fix (a crash, a kill, a file that cannot be opened yet) keep their retries."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from nightshard_dev import demo

from nightshard.backends.local.operator import LocalWorkerOperator
from nightshard.backends.worker_exit import ShardFailed
from nightshard.config.pipeline_config import load_pipeline_config
from nightshard.config.run_parameters import resolve_run_parameters
from nightshard.planning.plan_task import plan_run
from nightshard.reporting.cost import PriceError, hourly_price, load_price_table

REPO = Path(__file__).resolve().parents[1]
DS = "2026-11-22"


def truncated(folder: Path) -> None:
    path = folder / "part-00001.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def missing_column(folder: Path) -> None:
    path = folder / "part-00001.parquet"
    pq.write_table(pq.read_table(path).drop(["utilisation"]), path)


def empty_partition(folder: Path) -> None:
    for path in folder.glob("*.parquet"):
        path.unlink()


@pytest.mark.parametrize("damage, text", [
    (truncated, "cannot read the Parquet footer"),
    (missing_column, "column 'utilisation' is missing"),
    (empty_partition, "holds no Parquet files"),
])
def test_bad_input_fails_plan_without_retries(nightshard_home, damage, text):
    artifact = nightshard_home / "models" / "tabular_risk" / "v1" / "model.pt"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"plan checks existence only")
    damage(demo.make_risk_partition(nightshard_home / "data", DS, rows=400, files=2, row_group_rows=100))
    config = load_pipeline_config(REPO / "dags" / "pipelines" / "tabular_risk.yaml")
    run = resolve_run_parameters(config, {"ds": DS, "shard_rows": 200}, None)
    with pytest.raises(AirflowFailException, match=text):
        plan_run(config, run, run_id="manual__test")


def test_bad_params_and_prices_fail_without_retries():
    config = load_pipeline_config(REPO / "dags" / "pipelines" / "tabular_risk.yaml")
    with pytest.raises(AirflowFailException, match="../../etc"):
        resolve_run_parameters(config, {"ds": "../../etc"}, None)
    with pytest.raises(AirflowFailException):
        hourly_price(load_price_table(), "tpu", "on-demand")
    assert issubclass(PriceError, ValueError)  # callers catching ValueError still do


@pytest.mark.parametrize("exit_code, retried", [(2, False), (3, False), (1, True), (-9, True), (75, True)])
def test_worker_exits_a_retry_reproduces_fail_the_shard_without_retries(tmp_path, monkeypatch, exit_code, retried):
    from nightshard.backends.local import operator as local_worker

    worker = tmp_path / "worker.py"
    worker.write_text(f"import os, signal, sys\n"
                      f"os.kill(os.getpid(), signal.SIGKILL) if {exit_code} < 0 else sys.exit({exit_code})\n")
    monkeypatch.setattr(local_worker, "worker_command", lambda spec_uri: [sys.executable, str(worker)])
    operator = LocalWorkerOperator(task_id="infer", ticket={"shard_id": "00000-abc", "rows": 10,
                                                            "spec_uri": "spec.json", "result_uri": "result.json"})
    with pytest.raises(ShardFailed, match=f"exit {exit_code}") as failure:
        operator.execute(context={})
    assert isinstance(failure.value, AirflowFailException) is not retried
