"""Helpers the GKE tests share that are not fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM = REPO_ROOT / "tools" / "bin" / "helm"
CHART = REPO_ROOT / "helm" / "nightshard"
KUBERNETES_VERSION = "1.31"  # the schema version kubernetes-validate checks against (GKE regular channel)


def create_pod(api: Any, name: str, *, labels: dict[str, str], namespace: str = "nightshard") -> None:
    """Create a minimal pod on the loopback API with the real client, as another tool would."""
    configuration = kube_client.Configuration()
    kube_config.load_kube_config_from_dict(api.kubeconfig(), client_configuration=configuration)
    core = kube_client.CoreV1Api(kube_client.ApiClient(configuration))
    core.create_namespaced_pod(
        namespace,
        kube_client.V1Pod(
            metadata=kube_client.V1ObjectMeta(name=name, labels=labels),
            spec=kube_client.V1PodSpec(containers=[kube_client.V1Container(name="base", image="w")]),
        ),
    )
