"""`infer` on the GKE backend: one Kueue-admitted GPU pod per shard, watched from the triggerer.

`ShardPodOperator` is a KubernetesPodOperator whose pod comes from `build_worker_pod`; it adds what
the plain operator does not know about a shard: a committed shard needs no pod, a pod may queue for
hours in Kueue before it is scheduled, the exit code has a meaning, and the task's XCom is the
ShardResult the worker wrote.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException
from kubernetes.client.exceptions import ApiException

from nightshard.backends.gke.pod_builder import CONTAINER_NAME, TERMINATION_MESSAGE_POLICY, build_worker_pod
from nightshard.backends.gke.settings import GkeSettings
from nightshard.backends.worker_exit import (
    PREEMPTED_MESSAGE,
    ShardFailed,
    ShardRejected,
    explain_exit,
    is_deterministic_failure,
    is_preemption,
    read_shard_result,
)
from nightshard.config.run_parameters import ds_from_context
from nightshard.handoffs import ShardTicket

SCHEDULED_RUN_TYPE = "scheduled"
# Carried through the trigger's event (trigger_kwargs): preemptions retried so far in this try.
PREEMPTIONS_KEY = "nightshard_preemptions"
DEFAULT_MAX_PREEMPTIONS = 3



def priority_for_run_type(run_type: Any) -> str:
    """Scheduled runs are "nightly"; backfills, manual and asset-triggered runs are "backfill"."""
    value = getattr(run_type, "value", run_type)
    return "nightly" if str(value) == SCHEDULED_RUN_TYPE else "backfill"


class ShardPodOperator(KubernetesPodOperator):
    """Runs one shard ticket as a GPU pod on GKE and returns the worker's ShardResult as XCom."""

    # `gke` is not templated: it is parsed into settings in __init__, before templates render.
    template_fields = (*KubernetesPodOperator.template_fields, "ticket", "pipeline", "model_version")
    ui_color = "#e3ecfa"

    def __init__(
        self,
        *,
        ticket: ShardTicket,
        gke: Mapping[str, Any],
        pipeline: str,
        model_version: str,
        max_preemptions: int = DEFAULT_MAX_PREEMPTIONS,
        **kwargs: Any,
    ) -> None:
        settings = GkeSettings.from_config(gke)
        defaults: dict[str, Any] = {
            "kubernetes_conn_id": settings.kubernetes_conn_id,
            "namespace": settings.namespace,
            "deferrable": True,
            # Reattach to the running pod after a worker or triggerer restart instead of starting a
            # second one (`durable` is the Airflow 3.3 name of reattach_on_restart).
            "durable": True,
            # A Kueue-gated pod is unscheduled until admitted: that wait is bounded by the queue
            # timeout (hours); only the time from scheduled to running is the startup timeout.
            "schedule_timeout_seconds": settings.queue_timeout_seconds,
            "startup_timeout_seconds": settings.startup_timeout_seconds,
            "startup_check_interval_seconds": min(30, settings.poll_interval_seconds),
            "poll_interval": settings.poll_interval_seconds,
            "get_logs": True,
            # Failed pods stay for on-call (nightshard_pod_cleanup deletes them after the TTL).
            "on_finish_action": "delete_succeeded_pod",
            "on_kill_action": "delete_pod",
            # On kill the pod gets SIGTERM and this long to commit progress before SIGKILL.
            "termination_grace_period": settings.termination_grace_period_seconds,
            # build_pod_request_obj overwrites the builder's container field with this one (default "File").
            "termination_message_policy": TERMINATION_MESSAGE_POLICY,
            "random_name_suffix": False,  # build_worker_pod names are unique per shard and try
            "log_events_on_failure": True,
            "do_xcom_push": False,  # the XCom is the ShardResult read from result_uri
        }
        super().__init__(**{**defaults, **kwargs})
        self.ticket = ticket
        self.gke = gke
        self.pipeline = pipeline
        self.model_version = model_version
        self.max_preemptions = max_preemptions
        self.settings = settings

    def execute(self, context: Any) -> Any:
        ticket = self.ticket
        if ticket.get("already_committed"):
            self.log.info(
                "shard %s was committed by an earlier run: no pod, reusing %s",
                ticket["shard_id"],
                ticket["result_uri"],
            )
            return read_shard_result(ticket["result_uri"])
        priority = priority_for_run_type(context["dag_run"].run_type)
        self.full_pod_spec = self._shard_pod(context, preemption=0)
        self.log.info(
            "shard %s (%s rows): pod %s/%s, queue %s, priority %s, find it with: "
            "kubectl get pods -n %s -l nightshard.io/shard=%s",
            ticket["shard_id"],
            ticket.get("rows"),
            self.settings.namespace,
            self.full_pod_spec.metadata.name,
            self.settings.local_queue,
            priority,
            self.settings.namespace,
            self.full_pod_spec.metadata.labels["nightshard.io/shard"],
        )
        return super().execute(context)

    def _shard_pod(self, context: Any, *, preemption: int) -> Any:
        return build_worker_pod(
            self.settings,
            self.ticket,
            pipeline=self.pipeline,
            run_id=context["run_id"],
            ds=ds_from_context(context),  # the ds param wins over the logical date, as in plan
            model_version=self.ticket.get("model_version", self.model_version),
            priority=priority_for_run_type(context["dag_run"].run_type),
            try_number=context["ti"].try_number,
            preemption=preemption,
        )

    def invoke_defer_method(self, last_log_time: Any = None, context: Any = None) -> None:
        """Defer with what is left of the queue timeout, counted from the pod's creation.

        The trigger counts its schedule timeout from when it was deferred; re-deferred after a
        worker restart or a reattach it would start the full queue timeout again.
        """
        created = getattr(getattr(self.pod, "metadata", None), "creation_timestamp", None)
        if isinstance(created, datetime.datetime):
            waited = (datetime.datetime.now(datetime.UTC) - created).total_seconds()
            self.schedule_timeout_seconds = remaining_queue_seconds(self.settings.queue_timeout_seconds, waited)
        super().invoke_defer_method(last_log_time=last_log_time, context=context)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        """Back from the triggerer: fail with the shard's cause and next step, or return its result."""
        shard = self.ticket["shard_id"]
        if event.get("status") == "timeout":
            self._delete_unstarted_pod(event)
            raise ShardFailed(
                f"shard {shard}: pod {event.get('namespace')}/{event.get('name')} did not start in time: "
                f"{event.get('message')} Queue timeout is {self.settings.queue_timeout_seconds} s "
                f"(backend.gke.queue_timeout_seconds), startup timeout {self.settings.startup_timeout_seconds} s. "
                "The unstarted pod was deleted.",
                next_step=f"`kubectl get workloads -n {self.settings.namespace}` and "
                f"`kubectl describe clusterqueue` to see whether LocalQueue {self.settings.local_queue!r} "
                "has GPU quota, and the pod's events for node provisioning.",
            )
        try:
            super().trigger_reentry(context, event)
        except AirflowException as error:
            code = _exit_code(self.pod)
            if self.pod is None or is_preemption(code):
                # Exit 75 (SIGTERM honoured) or the pod deleted under us: Kueue preempted it.
                self._resume_after_preemption(context, event, error)
            cause, next_step = self._failure_explained(event, error)
            if code is not None and is_deterministic_failure(code):
                raise ShardRejected(cause, next_step=next_step) from error
            raise ShardFailed(cause, next_step=next_step) from error
        result = read_shard_result(self.ticket["result_uri"])
        self.log.info(
            "shard %s: %s, rows in %s, out %s, quarantined %s",
            shard,
            result.get("status"),
            result.get("rows_in"),
            result.get("rows_out"),
            result.get("rows_quarantined"),
        )
        return result

    def _resume_after_preemption(self, context: Any, event: Mapping[str, Any], error: Exception) -> None:
        """A new pod in the same try, up to max_preemptions; it resumes from the last checkpoint."""
        shard = self.ticket["shard_id"]
        done = int(event.get(PREEMPTIONS_KEY, 0)) + 1
        pod_ref = f"{event.get('namespace')}/{event.get('name')}"
        if done > self.max_preemptions:
            raise ShardFailed(
                f"shard {shard}: pod {pod_ref} preempted by Kueue {done} times in this try, more than "
                f"max_preemptions={self.max_preemptions}; the next try resumes from the last checkpoint.",
                next_step=f"`kubectl get workloads -n {self.settings.namespace}` to see what outranks it; "
                "raise max_preemptions for backfills.",
            ) from error
        self.log.warning(
            "shard %s: pod %s %s (preemption %d of at most %d in this try, retries untouched)",
            shard, pod_ref, PREEMPTED_MESSAGE, done, self.max_preemptions,
        )
        self.full_pod_spec = self._shard_pod(context, preemption=done)
        self.pod_request_obj = None
        self.pod = None
        self.trigger_kwargs = {**(self.trigger_kwargs or {}), PREEMPTIONS_KEY: done}
        self.execute_async(context)  # creates the new pod and defers: raises TaskDeferred

    def _failure_explained(self, event: Mapping[str, Any], error: Exception) -> tuple[str, str]:
        """(cause, next step) of a failed pod: its exit code explained, or how to find why it has none."""
        shard = self.ticket["shard_id"]
        pod_ref = f"{event.get('namespace')}/{event.get('name')}"
        code = _exit_code(self.pod)
        if code is None:
            return (
                f"shard {shard}: pod {pod_ref} failed before the worker reported an exit code: {error}.",
                f"`kubectl describe pod -n {event.get('namespace')} {event.get('name')}`.",
            )
        cause, next_step = explain_exit(code)
        return (
            f"shard {shard} failed: {cause} (exit {code}) in pod {pod_ref}, kept for on-call. "
            f"Spec: {self.ticket['spec_uri']}.",
            next_step,
        )

    def _delete_unstarted_pod(self, event: Mapping[str, Any]) -> None:
        # A pod still queued in Kueue would otherwise be admitted later and run unwatched.
        try:
            self.client.delete_namespaced_pod(
                name=event["name"],
                namespace=event["namespace"],
                grace_period_seconds=self.settings.termination_grace_period_seconds,
            )
            self.log.info("deleted unstarted pod %s/%s", event["namespace"], event["name"])
        except ApiException as error:
            if error.status != 404:
                self.log.warning("could not delete unstarted pod %s: %s", event["name"], error.reason)


def remaining_queue_seconds(queue_timeout_seconds: int, waited_seconds: float) -> int:
    """What is left of the queue timeout after `waited_seconds` (at least 1 s, so the trigger fires)."""
    return max(1, int(queue_timeout_seconds - max(0.0, waited_seconds)))


def _exit_code(pod: Any) -> int | None:
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.name == CONTAINER_NAME and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


def map_shard_pods(
    *,
    tickets: Any,
    gke: Mapping[str, Any],
    pipeline: str,
    model_version: str,
    max_preemptions: int = DEFAULT_MAX_PREEMPTIONS,
    **operator_kwargs: Any,
) -> Any:
    """`infer`: one ShardPodOperator per shard ticket (dynamic task mapping)."""
    GkeSettings.from_config(gke)  # fail at DAG parse time, not at 2 a.m. in the first shard
    operator_kwargs.setdefault("task_id", "infer")
    return ShardPodOperator.partial(
        gke=dict(gke),
        pipeline=pipeline,
        model_version=model_version,
        max_preemptions=max_preemptions,
        **operator_kwargs,
    ).expand(ticket=tickets)
