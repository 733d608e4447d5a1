"""build_worker_pod: every pod the GKE backend can send, validated offline and checked field by field."""

from __future__ import annotations

import itertools
import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from gke_support import CHART, KUBERNETES_VERSION
from kubernetes.client import ApiClient

from nightshard.backends.gke.naming import safe_label_value, worker_pod_name
from nightshard.backends.gke.pod_builder import build_worker_pod
from nightshard.backends.gke.settings import (
    ACCELERATORS,
    GKE_SETTINGS_SCHEMA,
    PROVISIONING_MODES,
    GkeSettings,
)

IMAGE = "us-docker.pkg.dev/acme/nightshard/worker:1.4.0"
RUN_ID = "scheduled__2026-11-23T02:00:00+00:00"
TICKET = {
    "shard_id": "00007",
    "shard_index": 7,
    "shard_count": 16,
    "rows": 250000,
    "spec_uri": "gs://acme-nightshard/specs/clicks_ctr/ds=2026-11-23/00007.json",
    "result_uri": "gs://acme-nightshard/results/clicks_ctr/ds=2026-11-23/00007.json",
    "already_committed": False,
}


def build(settings: GkeSettings | None = None, *, priority: str = "nightly", **overrides: Any):
    arguments = {"pipeline": "clicks_ctr", "run_id": RUN_ID, "ds": "2026-11-23", "model_version": "v7",
                 "priority": priority, **overrides}
    return build_worker_pod(settings or GkeSettings(image=IMAGE), TICKET, **arguments)


def as_manifest(pod) -> dict[str, Any]:
    return ApiClient().sanitize_for_serialization(pod)


def tolerations_of(pod) -> set[tuple[str, str, str | None, str | None]]:
    return {(t.key, t.operator, t.value, t.effect) for t in pod.spec.tolerations}


ACCELERATOR_LABELS_OF_THE_CHART = set(
    json.loads((CHART / "values.schema.json").read_text())["properties"]["kueue"]["properties"]["flavors"]["items"][
        "properties"]["accelerator"]["enum"]
)
EVERY_POD = list(itertools.product(ACCELERATORS, PROVISIONING_MODES, ("nightly", "backfill")))


@pytest.mark.parametrize("accelerator, provisioning, priority", EVERY_POD)
def test_every_buildable_pod_is_a_valid_kubernetes_pod(accelerator, provisioning, priority):
    settings = GkeSettings(image=IMAGE, accelerator=accelerator, provisioning=provisioning, gpus_per_pod=2)
    manifest = as_manifest(build(settings, priority=priority))
    assert settings.accelerator in ACCELERATOR_LABELS_OF_THE_CHART
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert manifest["spec"]["nodeSelector"]["cloud.google.com/gke-accelerator"] == accelerator
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == f"nightshard-{priority}"


def test_every_extra_setting_still_validates():
    settings = GkeSettings.from_config({
        "image": IMAGE, "provisioning": "queued", "gpus_per_pod": 8, "env": {"HF_HUB_OFFLINE": "1"},
        "node_selector": {"cloud.google.com/gke-nodepool": "h100-dws"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    })
    manifest = as_manifest(build(settings))
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert "kueue.x-k8s.io/pod-group-name" not in manifest["metadata"]["labels"]


def test_a_cpu_pod_neither_selects_nor_tolerates_a_gpu_node():
    pod = build(GkeSettings(image=IMAGE, gpus_per_pod=0, provisioning="spot"))
    assert "cloud.google.com/gke-accelerator" not in pod.spec.node_selector
    assert "nvidia.com/gpu" not in {t.key for t in pod.spec.tolerations}
    assert "nvidia.com/gpu" not in pod.spec.containers[0].resources.requests
    (term,) = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    assert [(e.key, e.operator) for e in term.match_expressions][0] == ("cloud.google.com/gke-accelerator", "DoesNotExist")


def test_an_on_demand_pod_keeps_off_spot_flex_start_and_queued_nodes():
    pod = build(GkeSettings(image=IMAGE, provisioning="on-demand"))
    (term,) = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    assert {(e.key, e.operator) for e in term.match_expressions} == {
        ("cloud.google.com/gke-spot", "DoesNotExist"),
        ("cloud.google.com/gke-flex-start", "DoesNotExist"),
        ("cloud.google.com/gke-queued", "DoesNotExist"),
    }
    (spot_term,) = build(GkeSettings(image=IMAGE, provisioning="spot")).spec.affinity.node_affinity.\
        required_during_scheduling_ignored_during_execution.node_selector_terms
    assert {e.key for e in spot_term.match_expressions} == {"cloud.google.com/gke-flex-start", "cloud.google.com/gke-queued"}


@pytest.mark.parametrize(
    "section, field, complaint",
    [
        ({"accelerator": "nvidia-a100-40gb"}, "accelerator", "use 'nvidia-tesla-a100'"),
        ({"accelerator": "nvidia-v100"}, "accelerator", "nvidia-tesla-a100"),
        ({"pods_per_shard": 2}, "pods_per_shard", "one pod per shard"),
        ({"provisioning": "queued", "gpus_per_pod": 1}, "provisioning", "flex-start"),
    ],
)
def test_settings_a_cluster_would_never_run_are_refused_with_the_fix(section, field, complaint):
    with pytest.raises(ValueError, match=f"backend.gke.{field}: .*{complaint}"):
        GkeSettings.from_config({"image": IMAGE, **section})


def test_nvidia_tesla_a100_is_the_accepted_a100_40gb_label():
    assert build(GkeSettings(image=IMAGE, accelerator="nvidia-tesla-a100")).spec.node_selector[
        "cloud.google.com/gke-accelerator"] == "nvidia-tesla-a100"


@pytest.mark.parametrize(
    "provisioning, extra_selector, extra_tolerations",
    [
        ("on-demand", {}, set()),
        ("spot", {"cloud.google.com/gke-spot": "true"}, {("cloud.google.com/gke-spot", "Equal", "true", "NoSchedule")}),
        ("flex-start", {"cloud.google.com/gke-flex-start": "true"}, set()),
        ("queued", {"cloud.google.com/gke-queued": "true"}, {("cloud.google.com/gke-queued", "Equal", "true", "NoSchedule")}),
    ],
)
def test_provisioning_mode_picks_node_selector_and_tolerations(provisioning, extra_selector, extra_tolerations):
    pod = build(GkeSettings(image=IMAGE, accelerator="nvidia-h100-80gb", provisioning=provisioning, gpus_per_pod=2))
    assert pod.spec.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb", **extra_selector}
    gpu = ("nvidia.com/gpu", "Exists", None, "NoSchedule")
    assert tolerations_of(pod) == {gpu} | extra_tolerations


def test_extra_node_selector_cannot_override_the_accelerator():
    settings = GkeSettings(image=IMAGE, node_selector=(("cloud.google.com/gke-accelerator", "nvidia-tesla-t4"),))
    assert build(settings).spec.node_selector["cloud.google.com/gke-accelerator"] == "nvidia-l4"


def test_gpu_cpu_and_memory_requests_equal_limits():
    settings = GkeSettings(image=IMAGE, gpus_per_pod=8, cpu="200", memory="1800Gi")
    resources = build(settings).spec.containers[0].resources
    assert resources.requests == resources.limits == {"cpu": "200", "memory": "1800Gi", "nvidia.com/gpu": "8"}


def test_container_runs_the_worker_cli_on_the_ticket_spec():
    container = build().spec.containers[0]
    assert container.name == "base"  # the container the pod operator follows
    assert container.image == IMAGE
    assert container.command + container.args == ["nightshard-worker", "run", "--spec", TICKET["spec_uri"]]


def test_pod_passes_the_restricted_pod_security_standard():
    pod = build()
    pod_context = pod.spec.security_context
    assert pod_context.run_as_non_root is True and pod_context.run_as_user == 10001
    assert pod_context.seccomp_profile.type == "RuntimeDefault"
    assert not pod.spec.host_network and not pod.spec.host_pid and not pod.spec.host_ipc
    for container in pod.spec.containers:
        context = container.security_context
        assert context.allow_privilege_escalation is False
        assert context.capabilities.drop == ["ALL"] and not context.capabilities.add
        assert context.run_as_non_root is True and context.run_as_user == 10001
        assert context.seccomp_profile.type == "RuntimeDefault"
        assert context.read_only_root_filesystem is True
        assert not context.privileged
    # Only volume types the restricted profile allows.
    for volume in pod.spec.volumes:
        assert volume.host_path is None


def test_read_only_root_gets_a_scratch_volume_for_home_and_tmpdir():
    pod = build(GkeSettings(image=IMAGE, scratch_size_limit="100Gi"))
    (volume,) = pod.spec.volumes
    assert volume.empty_dir.size_limit == "100Gi"
    container = pod.spec.containers[0]
    assert [(m.name, m.mount_path) for m in container.volume_mounts] == [(volume.name, "/scratch")]
    env = {e.name: e.value for e in container.env}
    assert env["HOME"] == "/scratch" and env["TMPDIR"].startswith("/scratch")


def test_lifecycle_fields_follow_the_settings():
    pod = build(GkeSettings(image=IMAGE, termination_grace_period_seconds=45, active_deadline_seconds=7200))
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.termination_grace_period_seconds == 45
    assert pod.spec.active_deadline_seconds == 7200
    assert pod.spec.service_account_name == "nightshard-worker"
    assert pod.spec.automount_service_account_token is False


def test_labels_identify_the_shard_and_annotations_keep_raw_values():
    pod = build()
    labels, annotations = pod.metadata.labels, pod.metadata.annotations
    assert labels["app.kubernetes.io/name"] == "nightshard-worker"
    assert labels["kueue.x-k8s.io/queue-name"] == "nightshard"
    assert labels["nightshard.io/pipeline"] == "clicks_ctr"
    assert labels["nightshard.io/shard"] == "00007"
    assert labels["nightshard.io/model-version"] == "v7"
    assert labels["nightshard.io/run"] != RUN_ID  # ':' and '+' are not allowed in label values
    assert annotations["nightshard.io/run-id"] == RUN_ID
    assert annotations["nightshard.io/result-uri"] == TICKET["result_uri"]
    assert "kueue.x-k8s.io/pod-group-name" not in labels


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("clicks_ctr", "clicks_ctr"),
        ("v1.2.3", "v1.2.3"),
        ("", ""),
        ("scheduled__2026-11-23T02:00:00+00:00", None),
        ("manual__2026-11-23T02:00:00.123456+00:00", None),
        ("-leading-dash", None),
        ("x" * 64, None),
        ("ünïcode run", None),
    ],
)
def test_label_values_are_sanitised_to_the_label_rules(raw, expected):
    value = safe_label_value(raw)
    if expected is not None:
        assert value == expected
    assert len(value) <= 63
    assert jsonschema.Draft7Validator({"pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}).is_valid(value)


def test_run_ids_that_clean_to_the_same_text_keep_different_labels():
    assert safe_label_value("manual__2026-01-01T00:00:00+00:00") != safe_label_value("manual__2026-01-01T00:00:00-00:00")


@pytest.mark.parametrize(
    "change",
    [{"run_id": "manual__x"}, {"shard_id": "00008"}, {"try_number": 2}, {"pipeline": "other"}],
)
def test_pod_name_is_deterministic_and_changes_with_run_shard_and_try(change):
    base = {"pipeline": "clicks_ctr", "run_id": RUN_ID, "shard_id": "00007", "shard_index": 7, "try_number": 1}
    assert worker_pod_name(**base) == worker_pod_name(**base)
    assert worker_pod_name(**base) != worker_pod_name(**{**base, **change})


def test_pod_name_is_a_dns_label_even_for_long_pipeline_names():
    name = worker_pod_name(pipeline="a_" * 40, run_id=RUN_ID, shard_id="s", shard_index=12345, try_number=10)
    assert len(name) <= 63
    assert jsonschema.Draft7Validator({"pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}).is_valid(name)


def test_unknown_priority_is_an_error():
    with pytest.raises(ValueError, match="priority"):
        build(priority="urgent")


# ---------------------------------------------------------------- settings


def test_settings_schema_is_strict_and_every_property_is_described():
    jsonschema.Draft202012Validator.check_schema(GKE_SETTINGS_SCHEMA)

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for name, child in node["properties"].items():
                assert child.get("description"), f"{path}.{name} has no description"
                walk(child, f"{path}.{name}")
        if node.get("type") == "array":
            walk(node["items"], f"{path}[]")

    walk(GKE_SETTINGS_SCHEMA, "backend.gke")


def test_schema_defaults_and_dataclass_defaults_agree():
    defaults = {name: prop["default"] for name, prop in GKE_SETTINGS_SCHEMA["properties"].items() if "default" in prop}
    assert GkeSettings(image=IMAGE).to_config() == {"image": IMAGE, **defaults}


def test_termination_grace_outlasts_the_workers_sigterm_bound():
    assert GkeSettings(image=IMAGE).termination_grace_period_seconds > 30


@pytest.mark.parametrize(
    "section, complaint",
    [
        ({"image": IMAGE, "accelerator": "nvidia-v100"}, "accelerator"),
        ({"image": IMAGE, "provisioning": "preemptible"}, "provisioning"),
        ({"image": IMAGE, "env": {"HOME": "/root"}}, "HOME"),
        ({"image": IMAGE, "gpu": 1}, "gpu"),
        ({}, "image"),
    ],
)
def test_schema_rejects_bad_sections(section, complaint):
    errors = list(jsonschema.Draft202012Validator(GKE_SETTINGS_SCHEMA).iter_errors(section))
    assert errors and any(complaint in str(e.message) or complaint in str(list(e.path)) for e in errors), errors


def test_from_config_round_trips_and_rejects_unknown_fields():
    section = {"image": IMAGE, "priority_classes": {"nightly": "prod-nightly", "backfill": "prod-backfill"},
               "env": {"B": "2", "A": "1"}, "tolerations": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]}
    settings = GkeSettings.from_config(section)
    assert settings.priority_class("nightly") == "prod-nightly"
    assert GkeSettings.from_config(settings.to_config()) == settings
    with pytest.raises(ValueError, match="unknown field"):
        GkeSettings.from_config({"image": IMAGE, "acelerator": "nvidia-l4"})


def test_one_accelerator_table_feeds_config_schema_chart_schema_and_prices():
    from nightshard.backends.gke.accelerators import ACCELERATORS as TABLE
    from nightshard.reporting.cost import load_price_table

    assert list(GKE_SETTINGS_SCHEMA["properties"]["accelerator"]["enum"]) == list(TABLE)
    assert ACCELERATOR_LABELS_OF_THE_CHART == set(TABLE)
    assert set(TABLE) <= set(load_price_table()["prices"])
    assert "nvidia-a100-40gb" not in load_price_table()["prices"]


def test_docs_show_the_accelerator_table_as_it_is():
    from nightshard.backends.gke.accelerators import markdown_table

    assert markdown_table() in (CHART.parents[1] / "docs" / "gke.md").read_text()
