"""LocalWorkerOperator reads the worker's exit code: deterministic failures fail at once, preemption
is rerun inside the same try up to max_preemptions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from nightshard.backends.local import operator as local_worker
from nightshard.backends.local.operator import LocalWorkerOperator
from nightshard.backends.worker_exit import ShardFailed


def scripted_worker(monkeypatch, tmp_path: Path, exit_codes: list[int], result_uri: Path) -> Path:
    """A stand-in worker CLI that exits with the next scripted code, writing the result on exit 0."""
    runs = tmp_path / "runs"
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"runs = pathlib.Path({str(runs)!r}); codes = {exit_codes!r}\n"
        "n = len(runs.read_text().splitlines()) if runs.exists() else 0\n"
        "runs.open('a').write('run\\n')\n"
        "code = codes[min(n, len(codes) - 1)]\n"
        f"if code == 0: pathlib.Path({str(result_uri)!r}).write_text(json.dumps("
        "{'rows_in': 1, 'rows_out': 1, 'rows_quarantined': 0, 'wall_seconds': 0.1, 'device': 'cpu'}))\n"
        "sys.exit(code)\n"
    )
    monkeypatch.setattr(local_worker, "worker_command", lambda spec_uri: [sys.executable, str(script)])
    return runs


def run(tmp_path: Path, max_preemptions: int = 3):
    ticket = {"shard_id": "00001", "rows": 10, "spec_uri": "file:///s.json",
              "result_uri": str(tmp_path / "result.json"), "already_committed": False}
    return LocalWorkerOperator(task_id="infer", ticket=ticket, max_preemptions=max_preemptions).execute({})


@pytest.mark.parametrize("code", [2, 3])
def test_a_deterministic_failure_is_not_retried(monkeypatch, tmp_path, code):
    runs = scripted_worker(monkeypatch, tmp_path, [code], tmp_path / "result.json")
    with pytest.raises(AirflowFailException, match=f"exit {code}.*Not retried"):
        run(tmp_path)
    assert len(runs.read_text().splitlines()) == 1


def test_preemptions_are_rerun_in_the_same_try(monkeypatch, tmp_path):
    runs = scripted_worker(monkeypatch, tmp_path, [75, 75, 0], tmp_path / "result.json")
    assert run(tmp_path)["rows_out"] == 1
    assert len(runs.read_text().splitlines()) == 3


def test_more_preemptions_than_allowed_fail_as_retryable(monkeypatch, tmp_path):
    runs = scripted_worker(monkeypatch, tmp_path, [75], tmp_path / "result.json")
    with pytest.raises(ShardFailed) as failure:
        run(tmp_path, max_preemptions=2)
    assert not isinstance(failure.value, AirflowFailException)  # Airflow's retries still apply
    assert len(runs.read_text().splitlines()) == 3


def test_both_backends_read_the_shard_result_file_one_way(tmp_path):
    from nightshard.backends.gke import operator as gke_operator
    from nightshard.backends.worker_exit import read_shard_result

    result = tmp_path / "_results" / "part-00001.json"
    result.parent.mkdir()
    result.write_text('{"shard_id": "00001", "rows_in": 3, "status": "succeeded"}')
    assert read_shard_result(str(result)) == read_shard_result(result.as_uri()) == {
        "shard_id": "00001", "rows_in": 3, "status": "succeeded"}
    assert gke_operator.read_shard_result is local_worker.read_shard_result is read_shard_result
