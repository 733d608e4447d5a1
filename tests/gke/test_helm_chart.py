"""The nightshard Helm chart, rendered by the real helm and checked like the Airflow chart's tests:
lint, render, assert on the objects, validate core kinds against the Kubernetes 1.31 schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from gke_support import CHART, KUBERNETES_VERSION

FULL_VALUES = CHART / "ci" / "full-values.yaml"
DWS_VALUES = CHART / "ci" / "dws-values.yaml"
EXAMPLE_VALUES = sorted((CHART / "ci").glob("*.yaml"))
NAMESPACE = "nightshard"
COVERED = ["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"]

# Fields Kueue's v1beta1 API requires (or the chart relies on) per kind: dotted paths into the object.
KUEUE_REQUIRED_FIELDS = {
    "ResourceFlavor": ["spec.nodeLabels"],
    "ClusterQueue": ["spec.resourceGroups", "spec.namespaceSelector", "spec.queueingStrategy", "spec.preemption"],
    "LocalQueue": ["spec.clusterQueue", "metadata.namespace"],
    "WorkloadPriorityClass": ["value"],
    "AdmissionCheck": ["spec.controllerName", "spec.parameters.apiGroup", "spec.parameters.kind", "spec.parameters.name"],
    "ProvisioningRequestConfig": ["spec.provisioningClassName"],
}
KUEUE_KINDS = set(KUEUE_REQUIRED_FIELDS)
CORE_KINDS = {"ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"}


def render(helm: Path, *args: str) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [str(helm), "template", "nightshard", str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def dig(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"{document['kind']} lacks {dotted}"
        value = value[part]
    return value


@pytest.fixture(scope="module")
def default_objects(helm):
    return render(helm)


@pytest.fixture(scope="module")
def full_objects(helm):
    return render(helm, "--values", str(FULL_VALUES))


@pytest.mark.parametrize(
    "values", [[], *(["--values", str(path)] for path in EXAMPLE_VALUES)], ids=["default", *(p.stem for p in EXAMPLE_VALUES)]
)
def test_chart_lints_strictly(helm, values):
    completed = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), *values], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    "bad_value, complaint",
    [
        ("kueue.clusterQueue.queueingStrategy=Fifo", "queueingStrategy"),
        ("kueue.flavors[0].accelerator=nvidia-v100", "accelerator"),
        ("worker.serviceAccount.gcpServiceAcount=x@y.iam.gserviceaccount.com", "gcpServiceAcount"),
        ("launcher.rbac.subjects[0].name=Airflow_Worker", "name"),
        ("kueue.flavors[0].accelerator=nvidia-a100-40gb", "accelerator"),
        ("kueue.flavors[0].spot=true", "spot"),
        # Kueue's ClusterQueue CEL rule, mirrored in the values schema: refused at install, not at apply.
        ("kueue.clusterQueue.preemption.reclaimWithinCohort=Never,kueue.clusterQueue.preemption.borrowWithinCohort=LowerPriority",
         "preemption"),
        # queued nodes without the ProvisioningRequest check never come; the check without a queued flavor is a typo.
        ('json:kueue.flavors=[{"name": "h100", "accelerator": "nvidia-h100-80gb", "provisioning": "queued", '
         '"gpus": 8, "cpu": "200", "memory": "1800Gi"}]', "queuedProvisioning.enabled is false"),
        ("kueue.queuedProvisioning.enabled=true", "no kueue.flavors entry has provisioning: queued"),
    ],
)
def test_schema_rejects_bad_values_at_install(helm, bad_value, complaint):
    option = ["--set-json", bad_value.removeprefix("json:")] if bad_value.startswith("json:") else ["--set", bad_value]
    completed = subprocess.run(
        [str(helm), "template", "nightshard", str(CHART), *option], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert complaint in completed.stderr


def test_every_value_in_values_yaml_has_a_comment_above_it():
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^\s*(- )?[A-Za-z][\w.-]*:")
    for number, line in enumerate(lines):
        if key.match(line):
            assert number > 0 and lines[number - 1].strip().startswith("#"), (
                f"values.yaml line {number + 1} `{line.strip()}` has no comment above it"
            )


def test_values_schema_is_strict_everywhere():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, f"{path} allows unknown keys"
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[{index}]")

    walk(schema, "$")


@pytest.mark.parametrize("objects_fixture", ["default_objects", "full_objects"])
def test_core_objects_validate_against_the_kubernetes_schema(objects_fixture, request):
    objects = request.getfixturevalue(objects_fixture)
    core = [o for o in objects if o["kind"] in CORE_KINDS]
    assert {o["kind"] for o in core} == CORE_KINDS
    for document in core:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    assert {o["kind"] for o in objects} <= CORE_KINDS | KUEUE_KINDS


@pytest.mark.parametrize("objects_fixture", ["default_objects", "full_objects"])
def test_kueue_objects_have_the_fields_of_kueue_v1beta1(objects_fixture, request):
    objects = request.getfixturevalue(objects_fixture)
    kueue = [o for o in objects if o["kind"] in KUEUE_KINDS]
    for document in kueue:
        assert document["apiVersion"] == "kueue.x-k8s.io/v1beta1"
        for path in KUEUE_REQUIRED_FIELDS[document["kind"]]:
            dig(document, path)
        assert len(document["metadata"]["name"]) <= 63
    for queue in by_kind(objects, "ClusterQueue"):
        preemption = queue["spec"]["preemption"]
        assert preemption["withinClusterQueue"] in ("Never", "LowerPriority", "LowerOrNewerEqualPriority")
        assert preemption["reclaimWithinCohort"] in ("Never", "LowerPriority", "Any")
        assert preemption["borrowWithinCohort"]["policy"] in ("Never", "LowerPriority")
        for group in queue["spec"]["resourceGroups"]:
            covered = group["coveredResources"]
            assert covered == COVERED
            for flavor in group["flavors"]:
                # Kueue requires every flavor of a group to list the covered resources, in order.
                assert [r["name"] for r in flavor["resources"]] == covered
                assert all("nominalQuota" in r for r in flavor["resources"])
    for priority_class in by_kind(objects, "WorkloadPriorityClass"):
        assert "spec" not in priority_class and isinstance(priority_class["value"], int)


def test_default_install_matches_the_pipeline_config_defaults(default_objects):
    from nightshard.backends.gke.settings import GkeSettings

    settings = GkeSettings(image="worker:1")
    assert [q["metadata"]["name"] for q in by_kind(default_objects, "LocalQueue")] == [settings.local_queue]
    assert {p["metadata"]["name"] for p in by_kind(default_objects, "WorkloadPriorityClass")} == {
        settings.nightly_priority_class, settings.backfill_priority_class,
    }
    nightly, backfill = sorted(by_kind(default_objects, "WorkloadPriorityClass"), key=lambda p: -p["value"])
    assert nightly["metadata"]["name"] == settings.nightly_priority_class  # nightly outranks backfill
    assert [s["metadata"]["name"] for s in by_kind(default_objects, "ServiceAccount")] == [settings.service_account]
    flavor = by_kind(default_objects, "ResourceFlavor")[0]
    assert flavor["spec"]["nodeLabels"] == {"cloud.google.com/gke-accelerator": settings.accelerator}
    assert flavor["spec"]["nodeTaints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert "tolerations" not in flavor["spec"]  # Kueue must not hand admitted pods a toleration they lack
    assert not by_kind(default_objects, "AdmissionCheck")


def test_full_values_add_workload_identity_dws_and_spot_flavor(full_objects):
    account = by_kind(full_objects, "ServiceAccount")[0]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "nightshard-worker@acme-ml.iam.gserviceaccount.com"
    )
    assert account["automountServiceAccountToken"] is False
    check = by_kind(full_objects, "AdmissionCheck")[0]
    config = by_kind(full_objects, "ProvisioningRequestConfig")[0]
    assert check["spec"]["controllerName"] == "kueue.x-k8s.io/provisioning-request"
    assert check["spec"]["parameters"]["name"] == config["metadata"]["name"]
    assert config["spec"]["provisioningClassName"] == "queued-provisioning.gke.io"
    queue = by_kind(full_objects, "ClusterQueue")[0]
    # The DWS check applies only to the queued flavor, never to the on-demand, flex-start or Spot ones.
    assert "admissionChecks" not in queue["spec"]
    assert queue["spec"]["admissionChecksStrategy"]["admissionChecks"] == [
        {"name": check["metadata"]["name"], "onFlavors": ["nightshard-batch-h100"]}
    ]
    assert queue["spec"]["cohort"] == "ml-batch"
    spot = [f for f in by_kind(full_objects, "ResourceFlavor") if f["spec"]["nodeLabels"].get("cloud.google.com/gke-spot")]
    assert len(spot) == 1 and spot[0]["spec"]["nodeLabels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"} in spot[0]["spec"]["nodeTaints"]
    (cpu,) = [f for f in by_kind(full_objects, "ResourceFlavor") if f["metadata"]["name"].endswith("-cpu")]
    assert "nodeTaints" not in cpu["spec"] and "cloud.google.com/gke-accelerator" not in cpu["spec"]["nodeLabels"]
    flavor_names = {f["metadata"]["name"] for f in by_kind(full_objects, "ResourceFlavor")}
    assert {f["name"] for f in queue["spec"]["resourceGroups"][0]["flavors"]} == flavor_names
    assert sorted(q["metadata"]["namespace"] for q in by_kind(full_objects, "LocalQueue")) == [
        "nightshard", "nightshard-staging",
    ]


def test_every_extra_namespace_gets_what_a_worker_pod_and_airflow_need_there(full_objects):
    for kind in ("LocalQueue", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"):
        assert sorted(o["metadata"]["namespace"] for o in by_kind(full_objects, kind)) == [
            "nightshard", "nightshard-staging",
        ], kind
    staging = [o for o in by_kind(full_objects, "RoleBinding") if o["metadata"]["namespace"] == "nightshard-staging"]
    assert {s["name"] for s in staging[0]["subjects"]} >= {"airflow-worker", "airflow-triggerer"}


@pytest.mark.parametrize("kueue_version", ["v0.13.4", "v0.19.2"])
@pytest.mark.parametrize("values", [None, *EXAMPLE_VALUES], ids=["default", *(p.stem for p in EXAMPLE_VALUES)])
def test_every_rendered_kueue_object_passes_kueues_own_crd_strictly(helm, values, kueue_version):
    from crd_check import validate_object

    objects = render(helm, *(["--values", str(values)] if values else []))
    kueue = [o for o in objects if o["apiVersion"].startswith("kueue.x-k8s.io/")]
    assert kueue
    for document in kueue:
        assert validate_object(document, kueue_version) == [], f"{document['kind']} {document['metadata']['name']}"


@pytest.mark.parametrize("kueue_version", ["v0.13.4", "v0.19.2"])
@pytest.mark.parametrize(
    "break_it, complaint",
    [
        (lambda q: q["spec"]["preemption"].update(reclaimWithinCohort="Never", borrowWithinCohort={"policy": "LowerPriority"}),
         "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never"),
        (lambda q: q["spec"].update(admissionCheks=["x"]), "spec.admissionCheks: unknown field"),
        (lambda q: q["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop(), "flavors must have the same number"),
        (lambda q: q["spec"].update(queueingStrategy="Fifo"), "is not one of"),
    ],
)
def test_the_crd_check_catches_what_the_api_server_would_refuse(default_objects, break_it, complaint, kueue_version):
    import copy

    from crd_check import validate_object

    queue = copy.deepcopy(by_kind(default_objects, "ClusterQueue")[0])
    break_it(queue)
    assert any(complaint in error for error in validate_object(queue, kueue_version)), validate_object(queue, kueue_version)


def test_launcher_role_grants_exactly_what_the_pod_operator_calls(default_objects):
    role = by_kind(default_objects, "Role")[0]
    grants = {(tuple(r["apiGroups"]), resource, verb) for r in role["rules"] for resource in r["resources"] for verb in r["verbs"]}
    expected = {
        (("",), "pods", verb) for verb in ("create", "get", "list", "watch", "patch", "delete")
    } | {(("",), "pods/log", "get"), (("",), "events", "list"), (("",), "events", "watch")}
    assert grants == expected
    binding = by_kind(default_objects, "RoleBinding")[0]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {s["name"] for s in binding["subjects"]} == {"airflow-worker", "airflow-triggerer"}


def test_network_policy_selects_worker_pods_and_denies_ingress_by_default(default_objects):
    policy = by_kind(default_objects, "NetworkPolicy")[0]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "nightshard-worker"}
    assert policy["spec"]["ingress"] == []
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {53, 80, 443} <= egress_ports


def test_long_release_names_are_cut_to_63_characters_and_stay_distinct(helm):
    long_release = "a" * 50
    completed = subprocess.run(
        [str(helm), "template", long_release, str(CHART), "--namespace", NAMESPACE],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(completed.stdout) if d]
    assert all(len(name) <= 63 for name in names)
    role_names = [n for n in names if "launcher" in n or n.startswith("a" * 50)]
    assert len(set(role_names)) >= 2


def render_notes(helm: Path, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it, without a cluster: the same text rendered by `tpl`
    inside a ConfigMap of a throwaway copy of the chart (helm template does not print notes)."""
    chart = tmp_path / "nightshard"
    shutil.copytree(CHART, chart)
    (chart / "notes.tpl").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ tpl (.Files.Get "notes.tpl") . | indent 4 }}\n'
    )
    completed = subprocess.run(
        [str(helm), "template", "nightshard", str(chart), "--namespace", NAMESPACE, "--show-only",
         "templates/zz-notes.yaml", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return yaml.safe_load(completed.stdout)["data"]["notes"]


def test_notes_tell_what_was_installed_the_next_command_and_the_kueue_pod_integration(helm, tmp_path):
    notes = render_notes(helm, tmp_path)
    assert 'ClusterQueue "nightshard"' in notes and 'LocalQueue "nightshard" in: nightshard' in notes
    assert "WITHOUT a Workload Identity binding" in notes
    assert "kubectl get clusterqueue nightshard" in notes
    assert "frameworks:" in notes and '- "pod"' in notes
    assert "managedJobsNamespaceSelector:" in notes and "podOptions" not in notes  # deprecated since v0.11
    assert "waitForPodsReady:" in notes
    assert "local_queue: nightshard" in notes


def test_the_documented_kueue_config_uses_current_keys_and_releases_quota_of_pods_that_never_start():
    text = (CHART.parents[1] / "docs" / "gke.md").read_text()
    block = text.split("<!-- kueue-manager-config -->")[1].split("<!-- /kueue-manager-config -->")[0]
    config = yaml.safe_load(block.split("```yaml")[1].split("```")[0])
    assert "pod" in config["integrations"]["frameworks"]
    assert "podOptions" not in config["integrations"]
    assert config["managedJobsNamespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "kueue-system"]
    assert config["waitForPodsReady"]["enable"] is True and config["waitForPodsReady"]["timeout"]
    assert "--no-enable-autorepair" in text.split("h100-dws")[1].split("```")[0]  # the queued pool
    assert "--flex-start --enable-autoscaling" in text  # a plain flex-start pool
    assert "kubectl label namespace nightshard nightshard.io/enabled=true" in text


def test_notes_name_the_dws_objects_and_the_google_service_account_when_enabled(helm, tmp_path):
    notes = render_notes(helm, tmp_path, "--values", str(FULL_VALUES))
    assert "DWS queued provisioning" in notes
    assert "kubectl label namespace nightshard-staging nightshard.io/enabled=true" in notes
    assert "acting as nightshard-worker@acme-ml.iam.gserviceaccount.com" in notes


@pytest.mark.parametrize("kueue_version", ["v0.13.4", "v0.19.2"])
def test_every_cel_rule_of_the_vendored_crds_compiles_so_none_is_skipped_silently(kueue_version):
    from crd_check import _program, crd_schemas

    rules: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(v["rule"] for v in node.get("x-kubernetes-validations", []))
            for child in node.values():
                collect(child)
        elif isinstance(node, list):
            for child in node:
                collect(child)

    for schema in crd_schemas(kueue_version).values():
        collect(schema)
    assert rules
    for rule in rules:
        _program(rule)  # raises on a rule cel-python cannot compile
