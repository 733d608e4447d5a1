"""The on-call alert takes cause and next step from the error's fields, not from its text; a foreign
exception still gets the next step its text names, else the task's usual one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nightshard.backends.worker_exit import ShardRejected
from nightshard.failures import ExplainedError, PermanentError, cause_and_next_step
from nightshard.notifications.messages import NEXT_STEP_BY_TASK
from nightshard.notifications.oncall_notifier import OnCallNotifier


def alert_for(exception: object, tmp_path, task_id: str = "infer") -> dict:
    ti = SimpleNamespace(dag_id="nightshard_tabular_risk", run_id="manual__1", task_id=task_id, try_number=1,
                         log_url=None)
    notifier = OnCallNotifier(pipeline="tabular_risk", outbox=str(tmp_path / "outbox"), topic=None,
                              gcp_conn_id="google_cloud_default")
    notifier.notify({"ti": ti, "task": None, "params": {"ds": "2026-11-22"}, "logical_date": None,
                     "exception": exception})
    [alert_file] = (tmp_path / "outbox").glob("*-alert-*.json")
    return json.loads(alert_file.read_text())


def test_alert_reads_cause_and_next_step_from_the_error_fields(tmp_path):
    error = ShardRejected("shard 00002-abcdef12 failed: too many rows were quarantined (exit 3).",
                          next_step="open the quarantine file\nthen fix the upstream data")
    alert = alert_for(error, tmp_path)
    assert alert["cause"] == "shard 00002-abcdef12 failed: too many rows were quarantined (exit 3)."
    assert alert["next_step"] == "open the quarantine file\nthen fix the upstream data"


def test_a_foreign_exception_keeps_the_next_step_its_text_names(tmp_path):
    alert = alert_for(RuntimeError("the bucket said 403. Next step: grant the worker SA read access"), tmp_path)
    assert alert["cause"] == "the bucket said 403. Next step: grant the worker SA read access"
    assert alert["next_step"] == "grant the worker SA read access"


def test_an_error_without_a_next_step_gets_the_tasks_usual_one(tmp_path):
    alert = alert_for(PermanentError("ds='x' is not a date: use YYYY-MM-DD"), tmp_path, task_id="plan")
    assert alert["cause"] == "ds='x' is not a date: use YYYY-MM-DD"
    assert alert["next_step"] == NEXT_STEP_BY_TASK["plan"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ExplainedError("shard 1 broke.", next_step="clear it"), ("shard 1 broke.", "clear it")),
        (ExplainedError("checks failed:\n- ids\n", next_step="inspect"), ("checks failed:\n- ids", "inspect")),
        (ExplainedError("no step"), ("no step", None)),
        (ValueError("bad. Next step: fix it\ntraceback"), ("bad. Next step: fix it\ntraceback", "fix it")),
        (ValueError(""), ("ValueError: see the task log", None)),
        (None, ("unknown: see the task log", None)),
    ],
)
def test_cause_and_next_step(error, expected):
    assert cause_and_next_step(error) == expected


def test_an_explained_error_still_reads_as_one_message():
    error = ExplainedError("shard 1 broke.", next_step="clear it")
    assert str(error) == "shard 1 broke. Next step: clear it"
    assert str(ExplainedError("checks:\n- ids\n", next_step="inspect")) == "checks:\n- ids\nNext step: inspect"


def test_alert_names_the_date_the_run_asked_for(tmp_path):
    import datetime as dt

    ti = SimpleNamespace(dag_id="nightshard_tabular_risk", run_id="scheduled__1", task_id="plan", try_number=1,
                         log_url=None)
    notifier = OnCallNotifier(pipeline="tabular_risk", outbox=str(tmp_path / "outbox"), topic=None,
                              gcp_conn_id="google_cloud_default")
    for index, (params, expected) in enumerate([({"ds": None}, "2026-11-22"), ({"ds": "2026-13-01"}, "2026-13-01")]):
        ti.run_id = f"scheduled__{index}"
        notifier.notify({"ti": ti, "task": None, "params": params, "exception": ValueError("bad"),
                         "logical_date": dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC)})
        [alert_file] = (tmp_path / "outbox").glob(f"*scheduled__{index}*.json")
        assert json.loads(alert_file.read_text())["ds"] == expected


def test_a_pickled_error_keeps_its_fields():
    import pickle

    error = pickle.loads(pickle.dumps(ShardRejected("shard 1 failed (exit 2).", next_step="fix the spec")))
    assert isinstance(error, ShardRejected)
    assert cause_and_next_step(error) == ("shard 1 failed (exit 2).", "fix the spec")
    assert str(error) == "shard 1 failed (exit 2). Next step: fix the spec"
