"""Delete failed worker pods once on-call no longer needs them.

ShardPodOperator keeps failed pods (their logs, events and exit state are the evidence); this module
deletes them after their time-to-live. Which pods expire is a pure decision (`expired_failed_pods`);
listing and deleting is the thin edge (`delete_expired_failed_pods`).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nightshard.backends.gke.pod_builder import APP_LABEL, FAILED_POD_TTL_ANNOTATION

WORKER_SELECTOR = f"{APP_LABEL[0]}={APP_LABEL[1]}"
FAILED_PHASE_SELECTOR = "status.phase=Failed"


@dataclass(frozen=True)
class ExpiredPod:
    """A failed worker pod past its time-to-live, and why it is deleted."""

    name: str
    namespace: str
    failed_at: datetime.datetime
    ttl_hours: int


def pod_failed_at(pod: Any) -> datetime.datetime | None:
    """When the pod's last container terminated; the pod's start or creation time when none did."""
    statuses = (pod.status.container_statuses if pod.status else None) or []
    finished = [
        s.state.terminated.finished_at
        for s in statuses
        if s.state and s.state.terminated and s.state.terminated.finished_at
    ]
    if finished:
        return max(finished)
    if pod.status and pod.status.start_time:
        return pod.status.start_time
    return pod.metadata.creation_timestamp


def pod_ttl_hours(pod: Any, default_ttl_hours: int) -> int:
    """The pod's own TTL annotation (set from its pipeline's failed_pod_ttl_hours), else the default."""
    raw = (pod.metadata.annotations or {}).get(FAILED_POD_TTL_ANNOTATION)
    try:
        return int(raw) if raw is not None else default_ttl_hours
    except ValueError:
        return default_ttl_hours


def expired_failed_pods(
    pods: Iterable[Any], *, now: datetime.datetime, default_ttl_hours: int
) -> list[ExpiredPod]:
    """Failed nightshard worker pods whose failure is older than their TTL, oldest first."""
    expired = []
    for pod in pods:
        if not pod.status or pod.status.phase != "Failed":
            continue
        if (pod.metadata.labels or {}).get(APP_LABEL[0]) != APP_LABEL[1]:
            continue
        failed_at = pod_failed_at(pod)
        ttl_hours = pod_ttl_hours(pod, default_ttl_hours)
        if failed_at is None or now - failed_at < datetime.timedelta(hours=ttl_hours):
            continue
        expired.append(ExpiredPod(pod.metadata.name, pod.metadata.namespace, failed_at, ttl_hours))
    return sorted(expired, key=lambda p: p.failed_at)


def delete_expired_failed_pods(
    *,
    kubernetes_conn_id: str,
    namespace: str,
    default_ttl_hours: int,
    now: datetime.datetime | None = None,
    dry_run: bool = False,
) -> list[ExpiredPod]:
    """List failed worker pods in `namespace`, delete the expired ones, return what was deleted."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client.exceptions import ApiException

    client = KubernetesHook(conn_id=kubernetes_conn_id).core_v1_client
    pods = client.list_namespaced_pod(
        namespace=namespace, label_selector=WORKER_SELECTOR, field_selector=FAILED_PHASE_SELECTOR
    ).items
    expired = expired_failed_pods(
        pods, now=now or datetime.datetime.now(datetime.UTC), default_ttl_hours=default_ttl_hours
    )
    if dry_run:
        return expired
    deleted = []
    for pod in expired:
        try:
            client.delete_namespaced_pod(name=pod.name, namespace=pod.namespace)
        except ApiException as error:
            if error.status != 404:  # gone already: someone else cleaned up, which is fine
                raise
        deleted.append(pod)
    return deleted
