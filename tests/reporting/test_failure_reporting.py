"""Runs that fail on purpose: on-call must find the shard, the cause and the next step in the task log
and in the alert in the outbox.

Airflow 3.3's dag.test() runs each task in-process (InProcessTestSupervisor) and sends the task log to
the process's stdout instead of $AIRFLOW_HOME/logs/dag_id=.../task_id=.../attempt=N.log (that file is
written when an executor runs the task under the supervisor), so each run happens in a fresh process
(`tests/dag_runner.py`) and the test reads the task log from its output, between dag.test()'s
"[DAG TEST] starting task_id=<task>" and "end task" lines.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import pyarrow.parquet as pq
import pytest
from dag_runner import runs_with_one_conf
from dag_runner import task_log as dag_test_task_log
from nightshard_dev import demo
from pipeline_runs import outbox_messages

from nightshard.notifications.messages import ALERT_SCHEMA, load_schema

RUN_SECONDS = 180
DS = "2026-11-22"
FAKE_WORKER = '''\
import sys
print("shard scored 400 rows, 300 quarantined: 75.00% bad, limit 50.00%; see the quarantine file")
sys.exit(3)  # EXIT_TOO_MANY_BAD_ROWS
'''

pytestmark = pytest.mark.slow


@pytest.fixture
def risk_partition(nightshard_home, airflow_db):
    """A small demo partition and a placeholder model file (plan only checks that the model exists)."""
    artifact = nightshard_home / "models" / "tabular_risk" / "v1" / "model.pt"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"placeholder: plan checks existence only")
    return demo.make_risk_partition(nightshard_home / "data", DS, rows=800, files=2, row_group_rows=200)


def run_failing(dag_id: str, conf: dict, fake_worker: Path | None = None) -> tuple[dict, str]:
    [(states, _, output)] = runs_with_one_conf(dag_id, [DS], conf, str(fake_worker) if fake_worker else None,
                                               timeout_seconds=RUN_SECONDS)
    return states, output


def task_log(output: str, task_id: str) -> str:
    log = dag_test_task_log(output, task_id)
    assert log, f"dag.test() printed no log for {task_id}"
    return log


def test_missing_column_fails_plan_with_the_file_column_and_next_step(risk_partition, nightshard_home):
    broken = risk_partition / "part-00001.parquet"
    table = pq.read_table(broken)
    pq.write_table(table.drop(["utilisation"]), broken)

    states, output = run_failing("nightshard_tabular_risk", {"shard_rows": 200})
    assert states["plan"] == ["failed"], states

    log = task_log(output, "plan")
    assert "part-00001.parquet: column 'utilisation' is missing" in log
    assert "Fix the upstream table or the pipeline config" in log

    [alert] = outbox_messages(nightshard_home, "alert")
    jsonschema.validate(alert, load_schema(ALERT_SCHEMA))
    assert alert["task"] == "plan" and alert["shard"] is None and alert["ds"] == DS
    assert "column 'utilisation' is missing" in alert["cause"]
    assert alert["next_step"].startswith("read the plan error")

    # dag.test() leaves a log file per task try in Airflow's layout; the alert points at it, and the
    # cause with its next step are the file's last lines, after the traceback
    assert alert["log_url"].startswith("file://"), alert["log_url"]
    log_file = Path(unquote(urlparse(alert["log_url"]).path))

    assert log_file.name == "attempt=1.log" and log_file.parent.name == "task_id=plan"
    assert log_file.parent.parent.parent.name == "dag_id=nightshard_tabular_risk"
    assert (log_file.parent.parent / "task_id=wait" / "attempt=1.log").is_file()
    last_lines = log_file.read_text().rstrip().splitlines()[-2:]
    assert last_lines[0].startswith("=== plan FAILED. Cause: ") and "column 'utilisation' is missing" in last_lines[0]
    assert last_lines[1] == f"=== Next step: {alert['next_step']}"
    assert output.rstrip().count("=== plan FAILED.") == 1  # the terminal shows the same block, once


def test_shard_with_too_many_bad_rows_names_shard_cause_and_next_step(
        risk_partition, nightshard_home, tmp_path):
    fake_worker = tmp_path / "fake_worker.py"
    fake_worker.write_text(FAKE_WORKER)

    states, output = run_failing("nightshard_tabular_risk", {"shard_rows": 400}, fake_worker)
    assert states["infer"] == ["failed", "failed"], states
    assert states["publish"] != ["success"]

    assert "no estimate: first run" in task_log(output, "plan")
    log = task_log(output, "infer")
    assert "75.00% bad, limit 50.00%" in log  # the worker's own words, streamed into the task log
    assert "too many rows were quarantined (exit 3)" in log
    assert "Next step: open the quarantine file" in log

    failed_shards = {line.split("shard ", 1)[1].split(" ", 1)[0] for line in log.splitlines()
                     if "ShardRejected: shard " in line}
    assert len(failed_shards) == 2
    alerts = [a for a in outbox_messages(nightshard_home, "alert") if a["task"] == "infer"]
    assert sorted(a["shard"] for a in alerts) == sorted(failed_shards)  # one alert file per shard
    for alert in alerts:
        jsonschema.validate(alert, load_schema(ALERT_SCHEMA))
        assert alert["shard"] in failed_shards and alert["shard"] in alert["cause"]
        assert "too many rows were quarantined" in alert["cause"]
        assert alert["next_step"].startswith("open the quarantine file")


def test_alerts_of_two_shards_failing_in_the_same_second_both_stay_in_the_outbox():
    from nightshard.notifications.messages import alert_message, outbox_file_name

    alerts = [alert_message(pipeline="tabular_risk", dag_id="nightshard_tabular_risk", ds=DS, run_id="r", task="infer",
                            shard=shard, try_number=1, cause="x", log_url=None) for shard in ("00000-a", "00001-b")]
    alerts[1]["failed_at"] = alerts[0]["failed_at"]
    assert outbox_file_name(alerts[0]) != outbox_file_name(alerts[1])
