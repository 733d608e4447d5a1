"""A pipeline config with `backend: gke` validates against the full schema and builds a DAG whose
`infer` is a mapped ShardPodOperator."""

from __future__ import annotations

import copy

import pytest
import yaml
from gke_support import REPO_ROOT

GKE_SECTION = {
    "kind": "gke",
    "gke": {
        "image": "us-docker.pkg.dev/acme/nightshard/worker:1.4.0",
        "accelerator": "nvidia-h100-80gb",
        "gpus_per_pod": 1,
        "provisioning": "spot",
        "queue_timeout_seconds": 21600,
    },
}


def gke_pipeline_document() -> dict:
    document = yaml.safe_load((REPO_ROOT / "dags" / "pipelines" / "tabular_risk.yaml").read_text())
    document["backend"] = copy.deepcopy(GKE_SECTION)
    document["cost"].pop("accelerator")  # on GKE it follows backend.gke.accelerator
    return document


def test_backend_gke_section_validates_in_the_pipeline_schema():
    from nightshard.config.pipeline_config import PipelineConfigError, validate_pipeline_document

    config = validate_pipeline_document(gke_pipeline_document(), "tabular_risk.yaml")
    assert config.backend.gke["accelerator"] == "nvidia-h100-80gb"

    broken = gke_pipeline_document()
    broken["backend"]["gke"]["acelerator"] = "nvidia-l4"
    with pytest.raises(PipelineConfigError):
        validate_pipeline_document(broken, "tabular_risk.yaml")


def test_gke_backend_builds_a_dag_with_mapped_shard_pods():
    from nightshard.backends.gke.operator import ShardPodOperator
    from nightshard.config.pipeline_config import validate_pipeline_document
    from nightshard.dag_factory import build_pipeline_dag

    dag = build_pipeline_dag(validate_pipeline_document(gke_pipeline_document(), "tabular_risk.yaml"))
    infer = dag.get_task("infer")
    assert infer.operator_class in (ShardPodOperator, "ShardPodOperator") or infer.operator_name == "ShardPodOperator"
    assert infer.partial_kwargs["gke"]["accelerator"] == "nvidia-h100-80gb"
