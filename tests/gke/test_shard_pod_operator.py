"""The real ShardPodOperator (a KubernetesPodOperator) against a Kubernetes API on loopback.

The operator is driven the way Airflow drives it: `execute` creates the pod and defers, the
trigger (serialized and rebuilt, as the triggerer does) runs its own async client until it fires,
and `trigger_reentry` finishes the task. Timeouts are seconds instead of hours.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowFailException
from fake_kube_api import PodScript

from nightshard.backends.gke.operator import (
    ShardFailed,
    ShardPodOperator,
    map_shard_pods,
    priority_for_run_type,
    remaining_queue_seconds,
)

RUN_ID = "scheduled__2026-11-23T02:00:00+00:00"


class FakeTaskInstance:
    """The parts of a RuntimeTaskInstance the pod operator reads and writes."""

    def __init__(self, try_number: int = 1) -> None:
        self.dag_id = "nightshard_clicks_ctr"
        self.task_id = "infer"
        self.run_id = RUN_ID
        self.map_index = 3
        self.try_number = try_number
        self.start_date = datetime.datetime.now(datetime.UTC)
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class FakeDagRun:
    def __init__(self, run_type: str) -> None:
        self.run_type = run_type
        self.run_id = RUN_ID


def make_context(try_number: int = 1, run_type: str = "scheduled") -> dict[str, Any]:
    return {
        "ti": FakeTaskInstance(try_number),
        "run_id": RUN_ID,
        "params": {"ds": "2026-11-23"},
        "logical_date": None,
        "dag_run": FakeDagRun(run_type),
        "dag": object(),
    }


def make_ticket(tmp_path: Path, *, committed: bool = False) -> dict[str, Any]:
    return {
        "shard_id": "00003",
        "shard_index": 3,
        "shard_count": 8,
        "rows": 125000,
        "spec_uri": f"file://{tmp_path}/specs/00003.json",
        "result_uri": str(tmp_path / "results" / "00003.json"),
        "already_committed": committed,
    }


def shard_result(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"shard_id": ticket["shard_id"], "status": "succeeded", "spec_fingerprint": "f" * 64,
            "rows_in": 125000, "rows_out": 124990, "rows_quarantined": 10}


def writes_result(ticket: dict[str, Any]):
    def write(_pod: dict[str, Any]) -> None:
        path = Path(ticket["result_uri"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(shard_result(ticket)))

    return write


def make_operator(ticket: dict[str, Any], max_preemptions: int = 3, **gke_overrides: Any) -> ShardPodOperator:
    gke = {
        "image": "us-docker.pkg.dev/acme/nightshard/worker:1.4.0",
        "namespace": "nightshard",
        "queue_timeout_seconds": 20,
        "startup_timeout_seconds": 1,  # far below the queue wait the tests script
        "poll_interval_seconds": 1,
        **gke_overrides,
    }
    return ShardPodOperator(
        task_id="infer",
        ticket=ticket,
        gke=gke,
        pipeline="clicks_ctr",
        model_version="v7",
        max_preemptions=max_preemptions,
        # Sub-second polling keeps the suite fast; production uses poll_interval_seconds.
        poll_interval=0.2,
        startup_check_interval_seconds=0.2,
    )


def task_log(caplog, capsys) -> str:
    """What the task log shows: Airflow's structlog writes to stdout, stdlib logging to caplog."""
    return caplog.text + capsys.readouterr().out


def defer(operator: ShardPodOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    return deferred.value


def run_trigger(deferred: TaskDeferred, timeout: float = 60) -> dict[str, Any]:
    """Rebuild the trigger from its serialized form, as the triggerer does, and run it to its event."""
    classpath, kwargs = deferred.trigger.serialize()
    module_name, class_name = classpath.rsplit(".", 1)
    trigger_class = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    trigger = trigger_class(**kwargs)
    assert trigger.serialize() == (classpath, kwargs)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout))


def test_scheduled_runs_are_nightly_and_everything_else_backfill():
    assert priority_for_run_type("scheduled") == "nightly"
    for run_type in ("manual", "backfill", "asset_triggered"):
        assert priority_for_run_type(run_type) == "backfill"


def test_operator_sets_queue_timeout_apart_from_startup_timeout():
    operator = make_operator({}, queue_timeout_seconds=21600, startup_timeout_seconds=600)
    assert operator.schedule_timeout_seconds == 21600
    assert operator.startup_timeout_seconds == 600
    assert operator.deferrable and operator.reattach_on_restart
    assert operator.on_finish_action.value == "delete_succeeded_pod"
    assert operator.on_kill_action.value == "delete_pod"
    assert operator.get_logs
    assert operator.termination_grace_period == 45
    assert "ticket" in operator.template_fields


def test_deferred_wait_survives_a_kueue_queue_longer_than_the_startup_timeout(kube, tmp_path, caplog, capsys):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=3.0, run_seconds=0.5, on_finish=writes_result(ticket)))
    operator = make_operator(ticket)
    context = make_context()

    deferred = defer(operator, context)
    created = kube.live_pods()
    assert len(created) == 1
    pod = created[0]
    assert pod["spec"]["schedulingGates"] == [{"name": "kueue.x-k8s.io/admission"}]
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "nightshard-nightly"
    assert pod["metadata"]["labels"]["nightshard.io/shard"] == "00003"
    assert context["ti"].xcoms["pod_name"] == pod["metadata"]["name"]

    event = run_trigger(deferred)  # waits 3 s gated: three times the 1 s startup timeout
    assert event["status"] == "success", event

    with caplog.at_level(logging.INFO):
        result = operator.trigger_reentry(context, event)
    assert result == shard_result(ticket)
    assert "worker done" in task_log(caplog, capsys)  # the pod log lands in the task log
    assert kube.live_pods() == []  # succeeded pods are deleted
    assert kube.deleted == [pod["metadata"]["name"]]


def test_failed_pod_log_goes_to_the_task_log_and_fails_the_task_with_the_exit_meaning(kube, tmp_path, caplog, capsys):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.2, run_seconds=0.3, exit_code=3,
                         log_lines=("scoring row group 4", "quarantine share 0.61 above 0.5")))
    operator = make_operator(ticket)
    context = make_context()

    event = run_trigger(defer(operator, context))
    assert event["status"] == "failed"
    with caplog.at_level(logging.INFO), pytest.raises(ShardFailed) as failure:
        operator.trigger_reentry(context, event)

    assert "quarantine share 0.61 above 0.5" in task_log(caplog, capsys)
    message = str(failure.value)
    assert "shard 00003 failed: too many rows were quarantined (exit 3)" in message
    assert "kept for on-call" in message
    # Deterministic: Airflow must not re-queue it and boot another GPU node for the same answer.
    assert isinstance(failure.value, AirflowFailException)
    kept = kube.live_pods()  # failed pods stay for on-call, marked so no retry reattaches to them
    assert len(kept) == 1 and kept[0]["metadata"]["labels"]["already_checked"] == "True"


def test_queue_timeout_fails_with_a_clear_message_and_deletes_the_queued_pod(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=None))  # Kueue never admits it
    operator = make_operator(ticket, queue_timeout_seconds=2)
    context = make_context()

    event = run_trigger(defer(operator, context))
    assert event["status"] == "timeout"
    with pytest.raises(ShardFailed) as failure:
        operator.trigger_reentry(context, event)

    message = str(failure.value)
    assert "did not start in time" in message
    assert "Pod took too long to be scheduled" in message
    assert "backend.gke.queue_timeout_seconds" in message
    assert "kubectl get workloads -n nightshard" in message
    assert kube.live_pods() == []  # not left in the queue to run unwatched later


def test_on_kill_deletes_the_pod_so_none_is_orphaned(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.1, run_seconds=60))
    operator = make_operator(ticket)

    defer(operator, make_context())
    assert len(kube.live_pods()) == 1
    operator.on_kill()

    assert kube.live_pods() == []
    delete_calls = [path for method, path in kube.calls if method == "DELETE"]
    assert len(delete_calls) == 1


def test_restarted_task_reattaches_to_the_running_pod_found_by_labels(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.1, run_seconds=2.0, on_finish=writes_result(ticket)))
    first = make_operator(ticket)
    first_deferred = defer(first, make_context(try_number=1))
    original = kube.live_pods()[0]["metadata"]["name"]

    # The worker died; Airflow runs the task again (next try) in a fresh process.
    second = make_operator(ticket)
    context = make_context(try_number=2)
    second_deferred = defer(second, context)

    assert [p["metadata"]["name"] for p in kube.live_pods()] == [original]  # no second pod
    assert second_deferred.trigger.pod_name == original == first_deferred.trigger.pod_name
    creates = [path for method, path in kube.calls if method == "POST"]
    assert len(creates) == 1
    list_calls = [path for method, path in kube.calls if method == "GET" and path.endswith("/pods")]
    assert list_calls, "reattach must search pods by the task instance labels"

    event = run_trigger(second_deferred)
    assert second.trigger_reentry(context, event) == shard_result(ticket)


def test_committed_shard_returns_its_stored_result_without_a_pod(kube, tmp_path):
    ticket = make_ticket(tmp_path, committed=True)
    writes_result(ticket)({})
    operator = make_operator(ticket)

    assert operator.execute(make_context()) == shard_result(ticket)
    assert kube.calls == []


def test_manual_runs_get_the_backfill_priority_class(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=None))
    operator = make_operator(ticket)
    defer(operator, make_context(run_type="manual"))
    labels = kube.live_pods()[0]["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/priority-class"] == "nightshard-backfill"
    operator.on_kill()


def test_map_shard_pods_maps_over_tickets_and_rejects_bad_settings_at_parse_time():
    from airflow.sdk import DAG

    with DAG("nightshard_test_mapping", schedule=None):
        mapped = map_shard_pods(
            tickets=[{"shard_id": "00000"}], gke={"image": "worker:1"}, pipeline="p", model_version="v1"
        )
    assert mapped.task_id == "infer"
    assert mapped.operator_class is ShardPodOperator or mapped.operator_class.__name__ == "ShardPodOperator"

    with pytest.raises(ValueError, match="unknown field"):
        map_shard_pods(tickets=[], gke={"image": "w", "acelerator": "nvidia-l4"}, pipeline="p", model_version="v")


def finish_deferrals(operator: ShardPodOperator, context: dict[str, Any], deferred: TaskDeferred) -> Any:
    """Play the triggerer and the task re-entry until the operator stops deferring; its last answer."""
    for _ in range(10):
        event = run_trigger(deferred)
        try:
            return operator.trigger_reentry(context, event)
        except TaskDeferred as again:
            deferred = again
    raise AssertionError("the operator kept deferring")


def test_exit_75_is_retried_in_the_same_try_from_the_checkpoint_without_using_retries(kube, tmp_path, caplog, capsys):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.1, run_seconds=0.3, exit_code=75),
               PodScript(admit_after_seconds=0.1, run_seconds=0.3, on_finish=writes_result(ticket)))
    operator = make_operator(ticket)
    context = make_context(try_number=1)

    with caplog.at_level(logging.INFO):
        result = finish_deferrals(operator, context, defer(operator, context))

    assert result == shard_result(ticket)
    creates = [path for method, path in kube.calls if method == "POST"]
    assert len(creates) == 2 and context["ti"].try_number == 1  # same try: the retry budget is untouched
    assert "preempted by Kueue; the retry resumes from the last checkpoint" in task_log(caplog, capsys)


def test_a_pod_deleted_by_kueue_preemption_is_replaced_and_said_so(kube, tmp_path, caplog, capsys):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.1, run_seconds=30, preempted_after_seconds=0.8),
               PodScript(admit_after_seconds=0.1, run_seconds=0.3, on_finish=writes_result(ticket)))
    operator = make_operator(ticket)
    context = make_context()

    with caplog.at_level(logging.INFO):
        result = finish_deferrals(operator, context, defer(operator, context))

    assert result == shard_result(ticket)
    log = task_log(caplog, capsys)
    assert "preempted by Kueue; the retry resumes from the last checkpoint" in log
    assert "failed before the worker reported an exit code" not in log
    assert len(kube.preempted) == 1
    names = [p["metadata"]["name"] for p in kube.live_pods()] + kube.deleted
    assert any("-t1p1-" in name for name in names), names  # the replacement, in the same try


def test_more_preemptions_than_allowed_fail_the_try_with_the_count(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=0.1, run_seconds=0.2, exit_code=75))
    operator = make_operator(ticket, max_preemptions=1)
    context = make_context()

    with pytest.raises(ShardFailed, match="preempted by Kueue 2 times in this try, more than max_preemptions=1"):
        finish_deferrals(operator, context, defer(operator, context))
    assert len([1 for method, _ in kube.calls if method == "POST"]) == 2


def test_the_pod_sent_keeps_the_builders_termination_message_policy_and_spot_safe_grace(kube, tmp_path):
    from nightshard_worker import tuning

    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=None))
    operator = make_operator(ticket)
    context = make_context()
    defer(operator, context)

    sent = operator.pod_request_obj  # what build_pod_request_obj made of the builder's pod
    (container,) = [c for c in sent.spec.containers if c.name == "base"]
    assert container.termination_message_policy == "FallbackToLogsOnError"
    (created,) = kube.live_pods()
    assert created["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # Spot shutdown gives the pod about 15 s: the worker's SIGTERM budget must fit inside it and the grace.
    assert tuning.PREEMPTION_EXIT_BUDGET_SECONDS < tuning.SPOT_SHUTDOWN_GRACE_SECONDS
    assert created["spec"]["terminationGracePeriodSeconds"] >= tuning.SPOT_SHUTDOWN_GRACE_SECONDS
    operator.on_kill()


def test_pods_per_shard_above_one_is_refused_before_any_pod_exists(kube):
    with pytest.raises(ValueError, match="pods_per_shard"):
        map_shard_pods(tickets=[], gke={"image": "w", "pods_per_shard": 2}, pipeline="p", model_version="v")
    assert kube.calls == []


def test_the_queue_timeout_counts_from_pod_creation_not_from_each_deferral():
    assert remaining_queue_seconds(21600, 0) == 21600
    assert remaining_queue_seconds(21600, 21000.4) == 599
    assert remaining_queue_seconds(21600, 30000) == 1  # overdue: fire at once


def test_a_re_deferral_gets_only_what_is_left_of_the_queue_timeout(kube, tmp_path):
    ticket = make_ticket(tmp_path)
    kube.reset(PodScript(admit_after_seconds=None))
    operator = make_operator(ticket, queue_timeout_seconds=600)
    context = make_context()
    defer(operator, context)
    # Resumed 400 s after the pod was created (a reattach, a re-deferral): the pod as the API has it.
    operator.pod = operator.hook.get_pod(operator.pod.metadata.name, "nightshard")
    operator.pod.metadata.creation_timestamp = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=400)
    with pytest.raises(TaskDeferred) as again:
        operator.invoke_defer_method(context=context)
    assert 195 <= again.value.trigger.schedule_timeout <= 200
    operator.on_kill()


@pytest.mark.parametrize("accelerator", ["nvidia-l4", "nvidia-tesla-a100", "nvidia-h200-141gb"])
@pytest.mark.parametrize("provisioning", ["on-demand", "spot", "flex-start", "queued"])
def test_the_pod_the_operator_really_sends_is_the_builders_pod_and_strictly_valid(tmp_path, accelerator, provisioning):
    import kubernetes_validate
    from gke_support import KUBERNETES_VERSION
    from kubernetes.client import ApiClient

    ticket = make_ticket(tmp_path)
    operator = make_operator(ticket, accelerator=accelerator, provisioning=provisioning, gpus_per_pod=8)
    context = make_context()
    built = operator._shard_pod(context, preemption=0)
    operator.full_pod_spec = built
    sent = operator.build_pod_request_obj(context, dry_run=True)

    manifest = ApiClient().sanitize_for_serialization(sent)
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    expected = ApiClient().sanitize_for_serialization(built)
    for field in ("nodeSelector", "affinity", "tolerations", "terminationGracePeriodSeconds", "securityContext",
                  "activeDeadlineSeconds", "serviceAccountName", "automountServiceAccountToken"):
        assert manifest["spec"].get(field) == expected["spec"].get(field), field
    container, built_container = manifest["spec"]["containers"][0], expected["spec"]["containers"][0]
    for field in ("terminationMessagePolicy", "resources", "securityContext", "command", "args", "env"):
        assert container.get(field) == built_container.get(field), field
