"""The `backend.gke` section of a pipeline config: its JSON schema and the frozen settings object.

Standard library only: the config loader imports this module to build the pipeline schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nightshard.backends.gke.accelerators import ACCELERATORS, unknown_accelerator_message

# on-demand: ordinary GPU nodes. spot: cheaper, preemptible (the worker commits and exits 75).
# flex-start: DWS flex-start nodes, started for the pod. queued: DWS queued provisioning through a
# Kueue AdmissionCheck + ProvisioningRequest, all-or-nothing capacity.
PROVISIONING_MODES = ("on-demand", "spot", "flex-start", "queued")

PRIORITIES = ("nightly", "backfill")
# The chart's WorkloadPriorityClass names (helm/nightshard values kueue.priorityClasses): the one home of
# the defaults the schema, the settings object and from_config share.
DEFAULT_PRIORITY_CLASSES = {"nightly": "nightshard-nightly", "backfill": "nightshard-backfill"}

_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_LABEL_VALUE = r"^(|[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$"

# Environment variables the pod builder owns; a user `env` entry with one of these names would
# silently break the worker's scratch layout, so the schema rejects them.
RESERVED_ENV = ("HOME", "TMPDIR")


def _integer(description: str, default: int, minimum: int, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "default": default, "description": description}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


GKE_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Where and how shard pods run on GKE; used when backend.kind is gke.",
    "required": ["image"],
    "properties": {
        "image": {
            "type": "string",
            "minLength": 1,
            "description": "Worker image with the nightshard-worker entry point, pinned by tag or digest.",
        },
        "image_pull_policy": {
            "type": "string",
            "enum": ["IfNotPresent", "Always", "Never"],
            "default": "IfNotPresent",
            "description": "Kubernetes imagePullPolicy of the worker container.",
        },
        "namespace": {
            "type": "string",
            "pattern": _DNS_LABEL,
            "default": "nightshard",
            "description": "Namespace the worker pods run in; the Helm chart's LocalQueue and ServiceAccount live here.",
        },
        "kubernetes_conn_id": {
            "type": "string",
            "minLength": 1,
            "default": "kubernetes_default",
            "description": "Airflow connection to the GKE cluster (kube_config, in_cluster, or kube_config_path).",
        },
        "service_account": {
            "type": "string",
            "pattern": _DNS_LABEL,
            "default": "nightshard-worker",
            "description": "Kubernetes ServiceAccount of the pods, bound to a Google service account by Workload Identity.",
        },
        "accelerator": {
            "type": "string",
            "enum": list(ACCELERATORS),
            "default": "nvidia-l4",
            "description": (
                "GPU type, a real GKE node label (A100 40 GB is nvidia-tesla-a100); becomes the "
                "cloud.google.com/gke-accelerator node selector. Ignored when gpus_per_pod is 0."
            ),
        },
        "gpus_per_pod": _integer(
            "GPUs requested (and limited) per pod, nvidia.com/gpu; 0 is a CPU pod (no GPU selector or toleration).",
            1, 0, 16,
        ),
        "cpu": {
            "type": "string",
            "pattern": _QUANTITY,
            "default": "8",
            "description": "CPU request and limit per pod (Kubernetes quantity, e.g. 8 or 7500m).",
        },
        "memory": {
            "type": "string",
            "pattern": _QUANTITY,
            "default": "32Gi",
            "description": "Memory request and limit per pod (Kubernetes quantity, e.g. 32Gi).",
        },
        "provisioning": {
            "type": "string",
            "enum": list(PROVISIONING_MODES),
            "default": "on-demand",
            "description": (
                "Node capacity: on-demand, spot (preemptible), flex-start (DWS, single node) or queued "
                "(DWS ProvisioningRequest, all-or-nothing; needs gpus_per_pod >= 2, else use flex-start)."
            ),
        },
        "local_queue": {
            "type": "string",
            "pattern": _DNS_LABEL,
            "default": "nightshard",
            "description": "Kueue LocalQueue in the namespace; becomes the kueue.x-k8s.io/queue-name label.",
        },
        "priority_classes": {
            "type": "object",
            "additionalProperties": False,
            "description": "Kueue WorkloadPriorityClass names for scheduled runs and for backfills/manual runs.",
            "default": dict(DEFAULT_PRIORITY_CLASSES),
            "properties": {
                "nightly": {
                    "type": "string",
                    "pattern": _DNS_LABEL,
                    "default": DEFAULT_PRIORITY_CLASSES["nightly"],
                    "description": "WorkloadPriorityClass of scheduled nightly runs.",
                },
                "backfill": {
                    "type": "string",
                    "pattern": _DNS_LABEL,
                    "default": DEFAULT_PRIORITY_CLASSES["backfill"],
                    "description": "WorkloadPriorityClass of backfills and manual runs (preemptible by nightly).",
                },
            },
        },
        "queue_timeout_seconds": _integer(
            "How long a pod may wait unscheduled (Kueue queue + node provisioning) before the task fails.",
            21600,
            60,
        ),
        "startup_timeout_seconds": _integer(
            "How long a scheduled pod may take to start (image pull on a new GPU node) before the task fails.",
            1200,
            30,
        ),
        "active_deadline_seconds": _integer(
            "Hard limit on one pod's run time; Kubernetes kills the pod after it.", 21600, 60
        ),
        "termination_grace_period_seconds": _integer(
            "Seconds between SIGTERM and SIGKILL; the worker commits and exits within 10 s of SIGTERM, "
            "inside the 15 s GKE gives Spot pods on node shutdown whatever this says.",
            45,
            15,
            600,
        ),
        "scratch_size_limit": {
            "type": "string",
            "pattern": _QUANTITY,
            "default": "50Gi",
            "description": "sizeLimit of the /scratch emptyDir (model cache, staged input, HOME, TMPDIR).",
        },
        "pods_per_shard": _integer(
            "Pods per shard; only 1 is supported (one pod per shard; a multi-pod Kueue group would wait forever).",
            1, 1, 1,
        ),
        "failed_pod_ttl_hours": _integer(
            "Failed worker pods are kept this long for on-call, then the cleanup DAG deletes them.", 72, 1
        ),
        "poll_interval_seconds": _integer(
            "How often the triggerer polls a running pod's status.", 10, 1, 300
        ),
        "env": {
            "type": "object",
            "description": "Extra environment variables of the worker container (name: value).",
            "default": {},
            "propertyNames": {"pattern": _ENV_NAME, "not": {"enum": list(RESERVED_ENV)}},
            "additionalProperties": {"type": "string"},
        },
        "node_selector": {
            "type": "object",
            "description": "Extra node selector labels, added to the accelerator and provisioning ones.",
            "default": {},
            "propertyNames": {"pattern": _LABEL_KEY},
            "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE},
        },
        "tolerations": {
            "type": "array",
            "description": "Extra tolerations, added to the GPU and provisioning ones.",
            "default": [],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key"],
                "description": "A Kubernetes toleration.",
                "properties": {
                    "key": {"type": "string", "description": "Taint key to tolerate."},
                    "operator": {
                        "type": "string",
                        "enum": ["Equal", "Exists"],
                        "default": "Equal",
                        "description": "Equal matches value; Exists matches any value.",
                    },
                    "value": {"type": "string", "description": "Taint value (with operator Equal)."},
                    "effect": {
                        "type": "string",
                        "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                        "description": "Taint effect; empty tolerates all effects.",
                    },
                },
            },
        },
    },
}


def gke_settings_problem(section: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first combination of `backend.gke` values a cluster would never run: (field, problem, fix).

    Checked before the JSON schema, so a near-miss accelerator name gets the right label, not a list.
    """
    label = section.get("accelerator", _default("accelerator"))
    if isinstance(label, str) and label not in ACCELERATORS:
        return ("accelerator", unknown_accelerator_message(label), "set backend.gke.accelerator to a GKE label")
    pods = section.get("pods_per_shard", 1)
    if isinstance(pods, int) and pods > 1:
        return (
            "pods_per_shard",
            f"{pods} pods per shard: the GKE backend launches one pod per shard, and a Kueue pod group of "
            f"{pods} would wait forever for pods that never come",
            "set pods_per_shard: 1 and give the pod more GPUs (gpus_per_pod) instead",
        )
    gpus = section.get("gpus_per_pod", _default("gpus_per_pod"))
    if section.get("provisioning") == "queued" and isinstance(gpus, int) and gpus <= 1:
        return (
            "provisioning",
            f"queued provisioning with {gpus} GPU per single-pod shard asks DWS for all-or-nothing capacity "
            "one small shard at a time; GKE recommends flex-start for single-node work",
            "use provisioning: flex-start (or on-demand/spot), or queued with gpus_per_pod >= 2",
        )
    return None


def _default(name: str) -> Any:
    return GKE_SETTINGS_SCHEMA["properties"][name]["default"]


@dataclass(frozen=True)
class Toleration:
    """One extra toleration from the config."""

    key: str
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None


@dataclass(frozen=True)
class GkeSettings:
    """The validated `backend.gke` section; defaults come from GKE_SETTINGS_SCHEMA."""

    image: str
    image_pull_policy: str = _default("image_pull_policy")
    namespace: str = _default("namespace")
    kubernetes_conn_id: str = _default("kubernetes_conn_id")
    service_account: str = _default("service_account")
    accelerator: str = _default("accelerator")
    gpus_per_pod: int = _default("gpus_per_pod")
    cpu: str = _default("cpu")
    memory: str = _default("memory")
    provisioning: str = _default("provisioning")
    local_queue: str = _default("local_queue")
    nightly_priority_class: str = DEFAULT_PRIORITY_CLASSES["nightly"]
    backfill_priority_class: str = DEFAULT_PRIORITY_CLASSES["backfill"]
    queue_timeout_seconds: int = _default("queue_timeout_seconds")
    startup_timeout_seconds: int = _default("startup_timeout_seconds")
    active_deadline_seconds: int = _default("active_deadline_seconds")
    termination_grace_period_seconds: int = _default("termination_grace_period_seconds")
    scratch_size_limit: str = _default("scratch_size_limit")
    pods_per_shard: int = _default("pods_per_shard")
    failed_pod_ttl_hours: int = _default("failed_pod_ttl_hours")
    poll_interval_seconds: int = _default("poll_interval_seconds")
    env: tuple[tuple[str, str], ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = field(default=())

    def __post_init__(self) -> None:
        # The schema guards config files; this guards settings built in code and tests.
        if self.provisioning not in PROVISIONING_MODES:
            raise ValueError(
                f"backend.gke.provisioning {self.provisioning!r} is not one of {', '.join(PROVISIONING_MODES)}"
            )
        problem = gke_settings_problem(
            {"accelerator": self.accelerator, "provisioning": self.provisioning,
             "gpus_per_pod": self.gpus_per_pod, "pods_per_shard": self.pods_per_shard}
        )
        if problem:
            field_name, message, fix = problem
            raise ValueError(f"backend.gke.{field_name}: {message}; {fix}")

    def priority_class(self, priority: str) -> str:
        """The Kueue WorkloadPriorityClass name for "nightly" or "backfill"."""
        if priority == "nightly":
            return self.nightly_priority_class
        if priority == "backfill":
            return self.backfill_priority_class
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> GkeSettings:
        """Build from the `backend.gke` mapping (already schema-validated); unknown keys are an error."""
        raw = dict(section)
        known = set(GKE_SETTINGS_SCHEMA["properties"])
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"backend.gke has unknown field(s) {unknown}; known fields: {sorted(known)}")
        if "image" not in raw:
            raise ValueError("backend.gke.image is required: the worker image to run, e.g. us-docker.pkg.dev/p/r/worker:1.4.0")
        priorities = raw.pop("priority_classes", None) or {}
        env = raw.pop("env", None) or {}
        node_selector = raw.pop("node_selector", None) or {}
        tolerations = raw.pop("tolerations", None) or []
        return cls(
            **raw,
            nightly_priority_class=priorities.get("nightly", DEFAULT_PRIORITY_CLASSES["nightly"]),
            backfill_priority_class=priorities.get("backfill", DEFAULT_PRIORITY_CLASSES["backfill"]),
            env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
            node_selector=tuple(sorted((str(k), str(v)) for k, v in node_selector.items())),
            tolerations=tuple(Toleration(**t) for t in tolerations),
        )

    def to_config(self) -> dict[str, Any]:
        """The inverse of from_config: a JSON-able `backend.gke` mapping (round-trips)."""
        raw = dataclasses.asdict(self)
        raw["priority_classes"] = {
            "nightly": raw.pop("nightly_priority_class"),
            "backfill": raw.pop("backfill_priority_class"),
        }
        raw["env"] = dict(self.env)
        raw["node_selector"] = dict(self.node_selector)
        raw["tolerations"] = [
            {k: v for k, v in dataclasses.asdict(t).items() if v is not None} for t in self.tolerations
        ]
        return raw
