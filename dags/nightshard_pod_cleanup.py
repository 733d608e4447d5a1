"""
### nightshard_pod_cleanup

Hourly housekeeping for the GKE backend. Failed shard pods are **kept** so on-call can read their
logs, events and exit state (`kubectl get pods -n nightshard -l app.kubernetes.io/name=nightshard-worker`);
this DAG deletes them once they are older than their time-to-live.

**Waits for** nothing: it runs every hour.

**Deletes** pods labelled `app.kubernetes.io/name=nightshard-worker` in phase `Failed` whose failure is
older than the pod's `nightshard.io/failed-pod-ttl-hours` annotation (the pipeline's
`backend.gke.failed_pod_ttl_hours`), or the `default_ttl_hours` param for pods without it.
Succeeded pods are deleted by the shard task itself. Set `dry_run` to list without deleting.

**Writes** nothing but the task log: one line per deleted pod.
"""

from __future__ import annotations

import datetime

from airflow.sdk import Param, dag, task

CLEANUP_SCHEDULE = "@hourly"  # failed pods pile up at most an hour past their TTL
DEFAULT_NAMESPACE = "nightshard"
DEFAULT_CONN_ID = "kubernetes_default"
DEFAULT_TTL_HOURS = 72  # matches backend.gke.failed_pod_ttl_hours' default: a long weekend of evidence


@dag(
    dag_id="nightshard_pod_cleanup",
    schedule=CLEANUP_SCHEDULE,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,  # two cleanups racing would only trip over each other's deletes
    tags=["nightshard", "gke", "maintenance"],
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": datetime.timedelta(minutes=5)},
    doc_md=__doc__,
    params={
        "namespace": Param(DEFAULT_NAMESPACE, type="string", description="Namespace of the worker pods."),
        "kubernetes_conn_id": Param(DEFAULT_CONN_ID, type="string", description="Airflow connection to the cluster."),
        "default_ttl_hours": Param(
            DEFAULT_TTL_HOURS, type="integer", minimum=1,
            description="TTL for failed pods without a nightshard.io/failed-pod-ttl-hours annotation.",
        ),
        "dry_run": Param(False, type="boolean", description="List the expired pods without deleting them."),
    },
)
def nightshard_pod_cleanup():
    @task
    def delete_expired_failed_pods(params=None) -> list[str]:
        from nightshard.backends.gke.cleanup import delete_expired_failed_pods as delete_expired

        deleted = delete_expired(
            kubernetes_conn_id=params["kubernetes_conn_id"],
            namespace=params["namespace"],
            default_ttl_hours=params["default_ttl_hours"],
            dry_run=params["dry_run"],
        )
        verb = "would delete" if params["dry_run"] else "deleted"
        for pod in deleted:
            print(f"{verb} {pod.namespace}/{pod.name}: failed {pod.failed_at.isoformat()}, TTL {pod.ttl_hours} h")
        return [pod.name for pod in deleted]

    delete_expired_failed_pods()


nightshard_pod_cleanup()
