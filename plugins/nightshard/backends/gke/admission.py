"""Will Kueue admit a pipeline's shard pod, to the right flavor, and will a node pool take it?

`check_admission` decides it as Kueue and the scheduler would, from the chart's values and the
pipeline's `backend.gke` settings, without a cluster: the LocalQueue and priority classes exist,
every requested resource is covered, the first flavor (in ClusterQueue order) whose node labels
the pod does not contradict, whose node taints it tolerates and whose quota it fits admits it,
that flavor has the pipeline's provisioning mode (and its admission check), and the pod with the
flavor's labels added lands on a node pool made as docs/gke.md makes them.

Pre-flight, before installing:

    python -m nightshard.backends.gke.admission --values my-values.yaml --pipeline dags/pipelines/p.yaml
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nightshard.backends.gke.accelerators import accelerator as accelerator_row
from nightshard.backends.gke.pod_builder import (
    ACCELERATOR_NODE_LABEL,
    FLEX_START_NODE_LABEL,
    GPU_RESOURCE,
    QUEUED_NODE_LABEL,
    SPOT_NODE_LABEL,
    build_worker_pod,
)
from nightshard.backends.gke.settings import GkeSettings

CHART_VALUES = Path(__file__).resolve().parents[4] / "helm" / "nightshard" / "values.yaml"
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
# The node label and the taint each provisioning mode's nodes carry (GKE adds them; the Spot taint
# is the one docs/gke.md adds with --node-taints) and the chart's flavors mirror.
MODE_LABELS = {"spot": SPOT_NODE_LABEL, "flex-start": FLEX_START_NODE_LABEL, "queued": QUEUED_NODE_LABEL}
MODE_TAINTS = {
    "spot": {"key": SPOT_NODE_LABEL, "value": "true", "effect": "NoSchedule"},
    "queued": {"key": QUEUED_NODE_LABEL, "value": "true", "effect": "NoSchedule"},
}
# Kueue admits only requests of resources its ClusterQueue covers (the chart's coveredResources).
COVERED_RESOURCES = ("cpu", "memory", "ephemeral-storage", GPU_RESOURCE)
SAMPLE_TICKET = {"shard_id": "00000", "shard_index": 0, "shard_count": 1, "spec_uri": "gs://b/s.json",
                 "result_uri": "gs://b/r.json"}


@dataclass(frozen=True)
class Flavor:
    """A ResourceFlavor as the chart renders it, with its ClusterQueue quota."""

    name: str
    provisioning: str
    node_labels: Mapping[str, str]
    node_taints: tuple[Mapping[str, str], ...]
    quota: Mapping[str, float]


@dataclass(frozen=True)
class NodePool:
    """A GKE node pool: the labels and taints its nodes carry, and GPUs per node."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]
    gpus_per_node: int


@dataclass
class Admission:
    """The verdict: the admitting flavor and node pool, or the problems with their fixes."""

    flavor: str | None = None
    node_pool: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def chart_values(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The chart's values.yaml with a values file merged over it, as helm does (lists replaced)."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    return _merge(values, overrides or {})


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flavors_of(values: Mapping[str, Any]) -> list[Flavor]:
    """The ResourceFlavors of kueue-resourceflavor.yaml, in ClusterQueue order (a test holds them equal):
    on-demand flavors last, the others in values order."""
    result = []
    entries = values["kueue"]["flavors"]
    ordered = [e for e in entries if e["provisioning"] != "on-demand"] + [e for e in entries if e["provisioning"] == "on-demand"]
    for entry in ordered:
        labels: dict[str, str] = {}
        taints: list[Mapping[str, str]] = []
        if entry.get("accelerator"):
            labels[ACCELERATOR_NODE_LABEL] = entry["accelerator"]
            taints.append(GPU_TAINT)
        mode = entry["provisioning"]
        if mode in MODE_LABELS:
            labels[MODE_LABELS[mode]] = "true"
        if mode in MODE_TAINTS:
            taints.append(MODE_TAINTS[mode])
        labels.update({str(k): str(v) for k, v in (entry.get("nodeLabels") or {}).items()})
        quota = {
            "cpu": parse_quantity(entry["cpu"]),
            "memory": parse_quantity(entry["memory"]),
            "ephemeral-storage": parse_quantity(entry.get("ephemeralStorage") or "10Ti"),
            GPU_RESOURCE: float(entry["gpus"]),
        }
        result.append(Flavor(entry["name"], mode, labels, tuple(taints), quota))
    return result


def node_pool(name: str, accelerator: str | None, provisioning: str, gpus_per_node: int = 0,
              extra_labels: Mapping[str, str] | None = None) -> NodePool:
    """The node pool docs/gke.md's `gcloud container node-pools create` makes for this GPU and mode."""
    labels = {NODEPOOL_LABEL: name, **(extra_labels or {})}
    taints: list[Mapping[str, str]] = []
    if accelerator:
        labels[ACCELERATOR_NODE_LABEL] = accelerator
        taints.append(GPU_TAINT)
    if provisioning in MODE_LABELS:
        labels[MODE_LABELS[provisioning]] = "true"
    if provisioning in MODE_TAINTS:
        taints.append(MODE_TAINTS[provisioning])
    return NodePool(name, labels, tuple(taints), gpus_per_node)


def node_pools_for(values: Mapping[str, Any]) -> list[NodePool]:
    """One documented node pool per flavor of the values (the largest machine of its GPU type)."""
    pools = []
    for entry in values["kueue"]["flavors"]:
        labels = {str(k): str(v) for k, v in (entry.get("nodeLabels") or {}).items()}
        name = labels.pop(NODEPOOL_LABEL, entry["name"])
        per_node = max(accelerator_row(entry["accelerator"]).gpus_per_node) if entry.get("accelerator") else 0
        pools.append(node_pool(name, entry.get("accelerator"), entry["provisioning"], per_node, labels))
    return pools


def check_admission(
    values: Mapping[str, Any],
    settings: GkeSettings,
    *,
    node_pools: Sequence[NodePool] | None = None,
    release_namespace: str = "nightshard",
    namespace_labels: Mapping[str, str] | None = None,
) -> Admission:
    """Which flavor admits the pipeline's shard pod and which node pool it lands on, or why not."""
    verdict = Admission()
    kueue = values["kueue"]
    if not kueue.get("enabled", True):
        verdict.problems.append("kueue.enabled is false: no ClusterQueue, so no pod is ever admitted. "
                                "Fix: install with kueue.enabled: true")
        return verdict
    pod = build_worker_pod(settings, SAMPLE_TICKET, pipeline="check", run_id="scheduled__check", ds="2026-01-01",
                           model_version="v", priority="nightly")
    _check_queue_objects(values, settings, release_namespace, namespace_labels, verdict)

    requests = {key: parse_quantity(value) for key, value in pod.spec.containers[0].resources.requests.items()}
    uncovered = sorted(set(requests) - set(COVERED_RESOURCES))
    if uncovered:
        verdict.problems.append(f"the pod requests {uncovered}, which the ClusterQueue does not cover: never admitted")
    flavor = _admitting_flavor(flavors_of(values), pod, requests, verdict)
    if flavor is None:
        return verdict
    verdict.flavor = flavor.name
    if flavor.provisioning != settings.provisioning:
        verdict.problems.append(
            f"admitted to the wrong flavor: {flavor.name!r} is {flavor.provisioning}, the pipeline asked for "
            f"{settings.provisioning}. Fix: add a {settings.provisioning} flavor of {settings.accelerator} to "
            "kueue.flavors (the ClusterQueue tries it before on-demand ones)"
        )
    if flavor.provisioning == "queued" and not kueue["queuedProvisioning"]["enabled"]:
        verdict.problems.append(
            f"flavor {flavor.name!r} is queued but kueue.queuedProvisioning.enabled is false: no "
            "ProvisioningRequest is made and the pod never gets nodes. Fix: enable queuedProvisioning"
        )

    selector = {**(pod.spec.node_selector or {}), **flavor.node_labels}  # Kueue adds the flavor's labels
    pools = list(node_pools) if node_pools is not None else node_pools_for(values)
    landing = [p for p in pools if _fits_node_pool(p, selector, pod, settings.gpus_per_pod)]
    if not landing:
        verdict.problems.append(
            f"no node pool fits: the admitted pod selects {selector} with {settings.gpus_per_pod} GPU(s), "
            f"tolerating {_toleration_keys(pod)}; pools: {[p.name for p in pools]}. Fix: create a "
            f"{settings.provisioning} pool of {settings.accelerator} as docs/gke.md shows, with a machine type of "
            f"at least {settings.gpus_per_pod} GPU(s), or lower backend.gke.gpus_per_pod"
        )
    else:
        verdict.node_pool = landing[0].name
    return verdict


def _check_queue_objects(values: Mapping[str, Any], settings: GkeSettings, release_namespace: str,
                         namespace_labels: Mapping[str, str] | None, verdict: Admission) -> None:
    kueue = values["kueue"]
    queue_name = kueue["localQueue"]["name"]
    namespaces = [release_namespace, *kueue["localQueue"].get("extraNamespaces", [])]
    if settings.local_queue != queue_name:
        verdict.problems.append(
            f"backend.gke.local_queue is {settings.local_queue!r} but the chart's LocalQueue is {queue_name!r}: "
            f"never admitted. Fix: set local_queue: {queue_name}"
        )
    if settings.namespace not in namespaces:
        verdict.problems.append(
            f"no LocalQueue, worker ServiceAccount or launcher Role in namespace {settings.namespace!r} (the chart "
            f"serves {namespaces}): never admitted. Fix: add it to kueue.localQueue.extraNamespaces"
        )
    classes = {kueue["priorityClasses"][k]["name"] for k in ("nightly", "backfill")}
    for wanted in (settings.nightly_priority_class, settings.backfill_priority_class):
        if wanted not in classes:
            verdict.problems.append(f"WorkloadPriorityClass {wanted!r} is not in the chart ({sorted(classes)}): "
                                    "Kueue rejects the workload. Fix: align backend.gke.priority_classes")
    match_labels = (kueue["clusterQueue"].get("namespaceSelector") or {}).get("matchLabels") or {}
    if match_labels:
        command = " ".join(f"{k}={v}" for k, v in match_labels.items())
        if namespace_labels is None:
            verdict.warnings.append(
                f"the ClusterQueue admits only namespaces labelled {match_labels}: run "
                f"`kubectl label namespace {settings.namespace} {command}` or its workloads are inadmissible"
            )
        elif any(namespace_labels.get(k) != v for k, v in match_labels.items()):
            verdict.problems.append(
                f"namespace {settings.namespace!r} lacks the labels {match_labels} of the ClusterQueue's "
                f"namespaceSelector: inadmissible. Fix: kubectl label namespace {settings.namespace} {command}"
            )


def _admitting_flavor(flavors: Sequence[Flavor], pod: Any, requests: Mapping[str, float],
                      verdict: Admission) -> Flavor | None:
    reasons = []
    for flavor in flavors:
        why = _flavor_mismatch(flavor, pod, requests)
        if why is None:
            return flavor
        reasons.append(f"{flavor.name}: {why}")
    verdict.problems.append("never admitted: no flavor fits the pod (" + "; ".join(reasons) + "). Fix: add a "
                            "flavor with this accelerator and provisioning mode, and quota for the pod")
    return None


def _flavor_mismatch(flavor: Flavor, pod: Any, requests: Mapping[str, float]) -> str | None:
    """Why Kueue skips this flavor for the pod, or None when it admits it here."""
    selector = pod.spec.node_selector or {}
    for key, value in selector.items():
        if key in flavor.node_labels and flavor.node_labels[key] != value:
            return f"pod selects {key}={value}, flavor has {flavor.node_labels[key]}"
    for key in _absent_keys(pod):
        if key in flavor.node_labels:
            return f"pod requires no {key} label, flavor has it"
    for taint in flavor.node_taints:
        if not _tolerates(pod, taint):
            return f"pod does not tolerate {taint['key']}={taint.get('value', '')}:{taint['effect']}"
    for resource, amount in requests.items():
        if amount > flavor.quota.get(resource, 0.0):
            return f"{resource} request {amount:g} above the flavor's quota {flavor.quota.get(resource, 0.0):g}"
    return None


def _fits_node_pool(pool: NodePool, selector: Mapping[str, str], pod: Any, gpus: int) -> bool:
    if any(pool.labels.get(k) != v for k, v in selector.items()):
        return False
    if any(key in pool.labels for key in _absent_keys(pod)):
        return False
    if any(not _tolerates(pod, taint) for taint in pool.taints):
        return False
    return gpus <= pool.gpus_per_node if gpus else True


def _absent_keys(pod: Any) -> list[str]:
    affinity = pod.spec.affinity
    if affinity is None or affinity.node_affinity is None:
        return []
    required = affinity.node_affinity.required_during_scheduling_ignored_during_execution
    return [e.key for term in required.node_selector_terms for e in term.match_expressions
            if e.operator == "DoesNotExist"]


def _tolerates(pod: Any, taint: Mapping[str, str]) -> bool:
    for toleration in pod.spec.tolerations or []:
        if toleration.key != taint["key"] or (toleration.effect and toleration.effect != taint["effect"]):
            continue
        if toleration.operator == "Exists" or toleration.value == taint.get("value"):
            return True
    return False


def _toleration_keys(pod: Any) -> list[str]:
    return [t.key for t in pod.spec.tolerations or []]


_SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity ("7500m", "32Gi", 8) as a number."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nightshard.backends.gke.admission", description=__doc__.split("\n")[0])
    parser.add_argument("--values", type=Path, help="the chart values file you install with (default: values.yaml)")
    parser.add_argument("--pipeline", type=Path, required=True, help="a pipeline config with backend.kind: gke")
    parser.add_argument("--namespace", default="nightshard", help="the chart's release namespace")
    arguments = parser.parse_args(argv)

    from nightshard.config.pipeline_config import PipelineConfigError, load_pipeline_config

    try:
        config = load_pipeline_config(arguments.pipeline)
    except PipelineConfigError as error:
        print(f"FAIL {error}")
        return 1
    backend = config.backend
    if backend.kind != "gke":
        print(f"FAIL {arguments.pipeline}: backend.kind is {backend.kind!r}; set backend.kind: gke to run on GKE")
        return 1
    overrides = yaml.safe_load(arguments.values.read_text()) if arguments.values else {}
    verdict = check_admission(chart_values(overrides), GkeSettings.from_config(backend.gke),
                              release_namespace=arguments.namespace)
    for warning in verdict.warnings:
        print(f"WARN {warning}")
    for problem in verdict.problems:
        print(f"FAIL {problem}")
    if verdict.ok:
        print(f"OK {config.name}: admitted to flavor {verdict.flavor!r}, lands on node pool {verdict.node_pool!r}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
