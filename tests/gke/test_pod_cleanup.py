"""The hourly cleanup of failed worker pods: the pure expiry decision, the edge against the
loopback API, and the thin DAG."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest
from fake_kube_api import PodScript
from gke_support import REPO_ROOT
from kubernetes.client import models as k8s

from nightshard.backends.gke.cleanup import delete_expired_failed_pods, expired_failed_pods

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


def pod(name: str, *, phase: str = "Failed", failed_hours_ago: float | None = 100, ttl: str | None = None,
        app: str = "nightshard-worker") -> k8s.V1Pod:
    finished = NOW - datetime.timedelta(hours=failed_hours_ago) if failed_hours_ago is not None else None
    statuses = None
    if finished is not None:
        statuses = [k8s.V1ContainerStatus(
            name="base", image="w", image_id="", ready=False, restart_count=0,
            state=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=1, finished_at=finished)),
        )]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name=name, namespace="nightshard", labels={"app.kubernetes.io/name": app},
            annotations={"nightshard.io/failed-pod-ttl-hours": ttl} if ttl else {},
            creation_timestamp=NOW - datetime.timedelta(hours=200),
        ),
        status=k8s.V1PodStatus(phase=phase, container_statuses=statuses),
    )


@pytest.mark.parametrize(
    "candidate, expired",
    [
        (pod("old-failure"), True),
        (pod("recent-failure", failed_hours_ago=2), False),
        (pod("succeeded", phase="Succeeded"), False),
        (pod("running", phase="Running"), False),
        (pod("not-ours", app="something-else"), False),
        (pod("short-ttl", failed_hours_ago=5, ttl="4"), True),
        (pod("long-ttl", failed_hours_ago=100, ttl="168"), False),
        (pod("never-ran", failed_hours_ago=None), True),  # falls back to the creation time
        (pod("bad-annotation", ttl="soon"), True),  # falls back to the default TTL
    ],
    ids=lambda value: value.metadata.name if isinstance(value, k8s.V1Pod) else str(value),
)
def test_only_failed_worker_pods_past_their_ttl_expire(candidate, expired):
    result = expired_failed_pods([candidate], now=NOW, default_ttl_hours=72)
    assert [p.name for p in result] == ([candidate.metadata.name] if expired else [])


def test_cleanup_deletes_expired_failed_pods_through_the_api(kube):
    from gke_support import create_pod

    kube.reset(PodScript(admit_after_seconds=0, run_seconds=0, exit_code=1))
    create_pod(kube, "ns-failed-1", labels={"app.kubernetes.io/name": "nightshard-worker"})
    create_pod(kube, "unrelated", labels={"app.kubernetes.io/name": "other"})
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=100)

    dry = delete_expired_failed_pods(kubernetes_conn_id="kubernetes_default", namespace="nightshard",
                                     default_ttl_hours=72, now=later, dry_run=True)
    assert [p.name for p in dry] == ["ns-failed-1"] and len(kube.live_pods()) == 2

    deleted = delete_expired_failed_pods(kubernetes_conn_id="kubernetes_default", namespace="nightshard",
                                         default_ttl_hours=72, now=later)
    assert [p.name for p in deleted] == ["ns-failed-1"]
    assert [p["metadata"]["name"] for p in kube.live_pods()] == ["unrelated"]


def test_cleanup_dag_is_documented_and_configured_on_purpose():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "nightshard_pod_cleanup.py"))
    assert bag.import_errors == {}
    dag = bag.dags["nightshard_pod_cleanup"]
    assert "nightshard" in dag.tags and dag.max_active_runs == 1
    assert {t.owner for t in dag.tasks} == {"ml-platform"} and {t.retries for t in dag.tasks} == {2}
    assert dag.doc_md and "failed-pod-ttl-hours" in dag.doc_md
    assert dag.timetable.expression in ("@hourly", "0 * * * *")
    assert set(dag.params) == {"namespace", "kubernetes_conn_id", "default_ttl_hours", "dry_run"}


def test_parsing_the_cleanup_dag_imports_no_heavy_or_kubernetes_module():
    probe = f"""
import json, runpy, sys
runpy.run_path({str(REPO_ROOT / 'dags' / 'nightshard_pod_cleanup.py')!r})
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas', 'numpy', 'kubernetes'))))
"""
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
