"""nightshard.backends.gke.admission: Kueue's flavor choice and the node pool, decided offline for every
accelerator x mode the schema accepts, for the example values files, and for each mis-configuration."""

from __future__ import annotations

import itertools
import subprocess

import pytest
import yaml
from gke_support import CHART

from nightshard.backends.gke.accelerators import ACCELERATORS, accelerator
from nightshard.backends.gke.admission import (
    chart_values,
    check_admission,
    flavors_of,
    main,
    node_pool,
)
from nightshard.backends.gke.settings import PROVISIONING_MODES, GkeSettings

IMAGE = "worker:1"
EXAMPLE_VALUES = sorted((CHART / "ci").glob("*.yaml"))


def gpus_for(label: str, mode: str) -> int:
    # queued needs >= 2 GPUs per pod (single-GPU queued shards are refused); the rest ask for one.
    return max(2, min(accelerator(label).gpus_per_node)) if mode == "queued" else 1


def every_mode_values(label: str) -> dict:
    """A flavor per provisioning mode of one GPU type, plus a CPU flavor, listed on-demand first."""
    flavors = [{"name": mode, "accelerator": label, "provisioning": mode, "gpus": 16, "cpu": "400", "memory": "3000Gi",
                "nodeLabels": {}} for mode in PROVISIONING_MODES]
    flavors.append({"name": "cpu", "provisioning": "on-demand", "gpus": 0, "cpu": "64", "memory": "256Gi",
                    "nodeLabels": {}})
    return chart_values({"kueue": {"flavors": flavors, "queuedProvisioning": {"enabled": True}}})


def every_mode_pools(label: str) -> list:
    per_node = max(accelerator(label).gpus_per_node)
    return [node_pool(f"pool-{mode}", label, mode, per_node) for mode in PROVISIONING_MODES] + [
        node_pool("default-pool", None, "on-demand")]


@pytest.mark.parametrize("label, mode", list(itertools.product(ACCELERATORS, PROVISIONING_MODES)))
def test_every_accelerator_and_mode_is_admitted_to_its_flavor_and_lands_on_its_pool(label, mode):
    settings = GkeSettings(image=IMAGE, accelerator=label, provisioning=mode, gpus_per_pod=gpus_for(label, mode))
    verdict = check_admission(every_mode_values(label), settings, node_pools=every_mode_pools(label))
    assert verdict.ok, verdict.problems
    assert (verdict.flavor, verdict.node_pool) == (mode, f"pool-{mode}")


def test_a_cpu_pod_is_admitted_to_the_cpu_flavor_and_never_holds_a_gpu_node():
    settings = GkeSettings(image=IMAGE, gpus_per_pod=0)
    verdict = check_admission(every_mode_values("nvidia-l4"), settings, node_pools=every_mode_pools("nvidia-l4"))
    assert (verdict.flavor, verdict.node_pool) == ("cpu", "default-pool"), verdict.problems


@pytest.mark.parametrize("values_file", EXAMPLE_VALUES, ids=[p.stem for p in EXAMPLE_VALUES])
def test_every_pipeline_an_example_values_file_offers_is_admitted_and_placed(values_file):
    values = chart_values(yaml.safe_load(values_file.read_text()))
    offered = [(f.get("accelerator"), f["provisioning"]) for f in values["kueue"]["flavors"]]
    for label, mode in offered:
        gpus = gpus_for(label, mode) if label else 0
        settings = GkeSettings(image=IMAGE, accelerator=label or "nvidia-l4", provisioning=mode, gpus_per_pod=gpus)
        verdict = check_admission(values, settings)
        assert verdict.ok, (label, mode, verdict.problems)
        (flavor,) = [f for f in flavors_of(values) if f.name == verdict.flavor]
        assert flavor.provisioning == mode and flavor.node_labels.get("cloud.google.com/gke-accelerator") == label


@pytest.mark.parametrize("values_file", [None, *EXAMPLE_VALUES], ids=["default", *(p.stem for p in EXAMPLE_VALUES)])
def test_the_flavor_model_is_what_helm_renders(helm, values_file):
    args = ["--values", str(values_file)] if values_file else []
    completed = subprocess.run([str(helm), "template", "nightshard", str(CHART), "--namespace", "nightshard", *args],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    objects = [d for d in yaml.safe_load_all(completed.stdout) if d]
    rendered = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "ResourceFlavor"}
    (queue,) = [o for o in objects if o["kind"] == "ClusterQueue"]
    order = [f["name"] for f in queue["spec"]["resourceGroups"][0]["flavors"]]
    values = chart_values(yaml.safe_load(values_file.read_text()) if values_file else {})
    model = flavors_of(values)
    assert [name.rsplit("-", 1)[-1] for name in order] == [f.name.rsplit("-", 1)[-1] for f in model]
    for flavor, name in zip(model, order):
        assert rendered[name]["nodeLabels"] == dict(flavor.node_labels)
        assert rendered[name].get("nodeTaints", []) == [dict(t) for t in flavor.node_taints]


L4 = every_mode_values("nvidia-l4")


@pytest.mark.parametrize(
    "values, settings, pools, complaint",
    [
        # On-demand pods on the example values used to run on Spot: now refused by the spot flavor.
        (chart_values({"kueue": {"flavors": [{"name": "l4-spot", "accelerator": "nvidia-l4", "provisioning": "spot",
                                              "gpus": 8, "cpu": "96", "memory": "384Gi"}]}}),
         GkeSettings(image=IMAGE), None, "never admitted: no flavor fits the pod (l4-spot: pod requires no cloud.google.com/gke-spot"),
        (chart_values({"kueue": {"flavors": [{"name": "h100", "accelerator": "nvidia-h100-80gb", "provisioning": "queued",
                                              "gpus": 8, "cpu": "200", "memory": "1800Gi"}]}}),
         GkeSettings(image=IMAGE, accelerator="nvidia-h100-80gb", provisioning="queued", gpus_per_pod=8), None,
         "queuedProvisioning.enabled is false"),
        # Kueue would admit a flex-start pod to the only (on-demand) flavor: wrong flavor and quota.
        (chart_values({}), GkeSettings(image=IMAGE, provisioning="flex-start"), None,
         "admitted to the wrong flavor: 'l4' is on-demand, the pipeline asked for flex-start"),
        (L4, GkeSettings(image=IMAGE, local_queue="gpu"), None, "chart's LocalQueue is 'nightshard'"),
        (L4, GkeSettings(image=IMAGE, namespace="team-b"), None, "add it to kueue.localQueue.extraNamespaces"),
        (L4, GkeSettings(image=IMAGE, cpu="500"), None, "cpu request 500 above the flavor's quota 400"),
        (chart_values({"kueue": {"flavors": [{"name": "l4", "accelerator": "nvidia-l4", "provisioning": "on-demand",
                                              "gpus": 32, "cpu": "400", "memory": "2000Gi"}]}}),
         GkeSettings(image=IMAGE, gpus_per_pod=16), None, "no node pool fits"),
        (L4, GkeSettings(image=IMAGE, provisioning="spot"), [node_pool("pool-od", "nvidia-l4", "on-demand", 8)],
         "no node pool fits"),
        (chart_values({}), GkeSettings(image=IMAGE, gpus_per_pod=0), None, "never admitted"),
        (chart_values({"kueue": {"priorityClasses": {"nightly": {"name": "nightly-gpu"}}}}), GkeSettings(image=IMAGE),
         None, "WorkloadPriorityClass 'nightshard-nightly' is not in the chart"),
    ],
    ids=["on-demand-pod-vs-spot-flavor", "queued-without-dws", "no-flex-start-flavor", "local-queue-name",
         "namespace-without-queue", "over-quota", "machine-too-small", "no-spot-pool", "cpu-pod-gpu-only-flavors",
         "priority-class"],
)
def test_each_misconfiguration_is_named_with_its_fix(values, settings, pools, complaint):
    verdict = check_admission(values, settings, node_pools=pools)
    assert not verdict.ok
    assert any(complaint in problem for problem in verdict.problems), verdict.problems
    assert all("Fix:" in problem or "never admitted" in problem for problem in verdict.problems), verdict.problems


def test_namespace_selector_is_checked_against_the_namespace_labels_with_the_label_command():
    values = chart_values({"kueue": {"clusterQueue": {"namespaceSelector": {"matchLabels": {"nightshard.io/enabled": "true"}}}}})
    unlabelled = check_admission(values, GkeSettings(image=IMAGE), namespace_labels={})
    assert any("kubectl label namespace nightshard nightshard.io/enabled=true" in p for p in unlabelled.problems)
    unknown = check_admission(values, GkeSettings(image=IMAGE))
    assert unknown.ok and "kubectl label namespace nightshard nightshard.io/enabled=true" in unknown.warnings[0]


def test_the_preflight_command_says_what_is_wrong_and_how_to_fix_it(tmp_path, capsys):
    pipeline = tmp_path / "scores.yaml"
    pipeline.write_text(yaml.safe_dump({
        "name": "scores", "input": {"uri": "/in", "id_column": "id"}, "output": {"uri": "/out"},
        "model": {"handler": "tabular", "version": "v1", "options": {"feature_columns": ["x"]}},
        "backend": {"kind": "gke", "gke": {"image": IMAGE, "accelerator": "nvidia-h100-80gb", "provisioning": "spot"}},
    }))
    assert main(["--pipeline", str(pipeline)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL never admitted") and "Fix: add a flavor" in out
    assert main(["--pipeline", str(pipeline), "--values", str(CHART / "ci" / "full-values.yaml")]) == 1
    pipeline.write_text(pipeline.read_text().replace("nvidia-h100-80gb", "nvidia-l4"))
    assert main(["--pipeline", str(pipeline), "--values", str(CHART / "ci" / "full-values.yaml")]) == 0
    assert "OK scores: admitted to flavor 'l4-spot', lands on node pool 'l4-spot'" in capsys.readouterr().out
