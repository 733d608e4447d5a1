"""Build the pod for one shard: a pure function of the settings and the shard ticket.

Every rule of a worker pod (GPU node, Kueue queue and priority, restricted Pod Security Standard,
scratch volume, labels an on-call engineer can select by) is decided here and tested without a
cluster. The operator sends this pod through KubernetesPodOperator.build_pod_request_obj, which
overwrites a few container fields (the operator passes those itself); tests/gke check the request
object it really sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client import models as k8s

from nightshard.backends.gke.naming import safe_label_value, worker_pod_name
from nightshard.backends.gke.settings import GkeSettings

CONTAINER_NAME = "base"  # the KubernetesPodOperator reads logs and exit state of the "base" container
WORKER_UID = 10001  # the worker image's non-root user; must match the image's USER
SCRATCH_MOUNT = "/scratch"
SCRATCH_VOLUME = "scratch"
# The last lines of the log become the termination message, shown by `kubectl describe`; the
# operator passes the same value, or build_pod_request_obj would put its default ("File") back.
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"

# Labels every worker pod carries; the cleanup DAG and on-call select on them.
APP_LABEL = ("app.kubernetes.io/name", "nightshard-worker")
LABEL_PIPELINE = "nightshard.io/pipeline"
LABEL_RUN = "nightshard.io/run"
LABEL_SHARD = "nightshard.io/shard"
LABEL_MODEL_VERSION = "nightshard.io/model-version"
LABEL_PRIORITY = "nightshard.io/priority"
ANNOTATION_PREFIX = "nightshard.io/"
FAILED_POD_TTL_ANNOTATION = "nightshard.io/failed-pod-ttl-hours"

# Kueue: the queue a pod is submitted to and its WorkloadPriorityClass.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"

# GKE node labels and taints.
ACCELERATOR_NODE_LABEL = "cloud.google.com/gke-accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
SPOT_NODE_LABEL = "cloud.google.com/gke-spot"
FLEX_START_NODE_LABEL = "cloud.google.com/gke-flex-start"
QUEUED_NODE_LABEL = "cloud.google.com/gke-queued"
# The label GKE puts on the nodes of each provisioning mode (on-demand nodes carry none of them).
MODE_NODE_LABELS = {"spot": SPOT_NODE_LABEL, "flex-start": FLEX_START_NODE_LABEL, "queued": QUEUED_NODE_LABEL}


def build_worker_pod(
    settings: GkeSettings,
    ticket: Mapping[str, Any],
    *,
    pipeline: str,
    run_id: str,
    ds: str,
    model_version: str,
    priority: str,
    try_number: int = 1,
    preemption: int = 0,
) -> k8s.V1Pod:
    """The pod that runs `nightshard-worker run --spec <spec_uri>` for one shard ticket."""
    priority_class = settings.priority_class(priority)  # raises on an unknown priority
    shard_id = str(ticket["shard_id"])
    name = worker_pod_name(
        pipeline=pipeline,
        run_id=run_id,
        shard_id=shard_id,
        shard_index=int(ticket["shard_index"]),
        try_number=try_number,
        preemption=preemption,
    )
    labels = {
        APP_LABEL[0]: APP_LABEL[1],
        "app.kubernetes.io/component": "shard",
        "app.kubernetes.io/part-of": "nightshard",
        LABEL_PIPELINE: safe_label_value(pipeline),
        LABEL_RUN: safe_label_value(run_id),
        LABEL_SHARD: safe_label_value(shard_id),
        LABEL_MODEL_VERSION: safe_label_value(model_version),
        LABEL_PRIORITY: priority,
        KUEUE_QUEUE_LABEL: settings.local_queue,
        KUEUE_PRIORITY_LABEL: priority_class,
    }
    # Labels are cut and hashed to fit; the annotations keep the raw values for humans and tools.
    annotations = {
        f"{ANNOTATION_PREFIX}pipeline": pipeline,
        f"{ANNOTATION_PREFIX}run-id": run_id,
        f"{ANNOTATION_PREFIX}ds": ds,
        f"{ANNOTATION_PREFIX}shard-id": shard_id,
        f"{ANNOTATION_PREFIX}shard-index": str(ticket["shard_index"]),
        f"{ANNOTATION_PREFIX}shard-count": str(ticket["shard_count"]),
        f"{ANNOTATION_PREFIX}model-version": model_version,
        f"{ANNOTATION_PREFIX}spec-uri": str(ticket["spec_uri"]),
        f"{ANNOTATION_PREFIX}result-uri": str(ticket["result_uri"]),
        # Read by nightshard_pod_cleanup: each pipeline keeps its failed pods as long as it asked.
        FAILED_POD_TTL_ANNOTATION: str(settings.failed_pod_ttl_hours),
    }
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=name, namespace=settings.namespace, labels=labels, annotations=annotations
        ),
        spec=k8s.V1PodSpec(
            restart_policy="Never",  # a retry is Airflow's decision, made with the exit code in hand
            service_account_name=settings.service_account,
            # The worker reaches GCS through Workload Identity's metadata server, not the API server.
            automount_service_account_token=False,
            termination_grace_period_seconds=settings.termination_grace_period_seconds,
            active_deadline_seconds=settings.active_deadline_seconds,
            node_selector=node_selector(settings),
            affinity=node_affinity(settings),
            tolerations=tolerations(settings),
            security_context=pod_security_context(),
            volumes=[
                k8s.V1Volume(
                    name=SCRATCH_VOLUME,
                    empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=settings.scratch_size_limit),
                )
            ],
            containers=[worker_container(settings, ticket)],
        ),
    )


def worker_container(settings: GkeSettings, ticket: Mapping[str, Any]) -> k8s.V1Container:
    """The single worker container: command, resources, scratch mount and environment."""
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    if settings.gpus_per_pod:
        resources[GPU_RESOURCE] = str(settings.gpus_per_pod)
    env = [
        k8s.V1EnvVar(name="HOME", value=SCRATCH_MOUNT),
        k8s.V1EnvVar(name="TMPDIR", value=f"{SCRATCH_MOUNT}/tmp"),
        *(k8s.V1EnvVar(name=key, value=value) for key, value in settings.env),
    ]
    return k8s.V1Container(
        name=CONTAINER_NAME,
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        command=["nightshard-worker"],
        args=["run", "--spec", str(ticket["spec_uri"])],
        # Requests equal limits: a GPU pod is Guaranteed QoS, the last to be evicted on pressure.
        resources=k8s.V1ResourceRequirements(requests=dict(resources), limits=dict(resources)),
        env=env,
        volume_mounts=[k8s.V1VolumeMount(name=SCRATCH_VOLUME, mount_path=SCRATCH_MOUNT)],
        security_context=container_security_context(),
        termination_message_policy=TERMINATION_MESSAGE_POLICY,
    )


def node_selector(settings: GkeSettings) -> dict[str, str]:
    """GPU type, capacity kind, then the config's extra labels (which may not override ours).

    A CPU pod (gpus_per_pod 0) selects no accelerator: it must not hold a GPU VM.
    """
    selector = {ACCELERATOR_NODE_LABEL: settings.accelerator} if settings.gpus_per_pod else {}
    if settings.provisioning == "spot":
        selector[SPOT_NODE_LABEL] = "true"
    elif settings.provisioning == "flex-start":
        selector[FLEX_START_NODE_LABEL] = "true"
    elif settings.provisioning == "queued":
        selector[QUEUED_NODE_LABEL] = "true"
    for key, value in settings.node_selector:
        selector.setdefault(key, value)
    return selector


def node_affinity(settings: GkeSettings) -> k8s.V1Affinity | None:
    """Keep a pod off the node kinds it did not ask for, and out of their Kueue flavors.

    Kueue matches a pod against a flavor only on the label keys the flavor defines, so an on-demand
    pod without these terms fits a Spot or flex-start flavor too (and is then sent to its nodes).
    GKE puts each mode's label only on that mode's nodes, so DoesNotExist matches the others.
    """
    absent = []
    if not settings.gpus_per_pod:
        absent.append(ACCELERATOR_NODE_LABEL)
    absent += [label for mode, label in MODE_NODE_LABELS.items() if mode != settings.provisioning]
    if not absent:
        return None
    return k8s.V1Affinity(
        node_affinity=k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
                node_selector_terms=[
                    k8s.V1NodeSelectorTerm(
                        match_expressions=[
                            k8s.V1NodeSelectorRequirement(key=key, operator="DoesNotExist") for key in absent
                        ]
                    )
                ]
            )
        )
    )


def tolerations(settings: GkeSettings) -> list[k8s.V1Toleration]:
    """GKE taints GPU nodes with nvidia.com/gpu; spot and queued-provisioning pools carry their own.

    A CPU pod does not tolerate the GPU taint, so it never lands on (and holds) a GPU node.
    """
    result = []
    if settings.gpus_per_pod:
        result.append(k8s.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule"))
    if settings.provisioning == "spot":
        result.append(k8s.V1Toleration(key=SPOT_NODE_LABEL, operator="Equal", value="true", effect="NoSchedule"))
    elif settings.provisioning == "queued":
        result.append(k8s.V1Toleration(key=QUEUED_NODE_LABEL, operator="Equal", value="true", effect="NoSchedule"))
    for extra in settings.tolerations:
        result.append(
            k8s.V1Toleration(key=extra.key, operator=extra.operator, value=extra.value, effect=extra.effect)
        )
    return result


def pod_security_context() -> k8s.V1PodSecurityContext:
    """Pod-level fields of the restricted Pod Security Standard."""
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=WORKER_UID,
        run_as_group=WORKER_UID,
        fs_group=WORKER_UID,  # the scratch emptyDir is writable by the worker user
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    """Container-level fields of the restricted Pod Security Standard, plus a read-only root."""
    return k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=WORKER_UID,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )
