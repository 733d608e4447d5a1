"""Pipeline configs: a broken config names the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nightshard.config import PipelineConfigError, expand_environment, load_pipeline_config

MINIMAL = {
    "name": "scores",
    "input": {"uri": "/data/in", "id_column": "id"},
    "model": {"handler": "tabular", "version": "v1", "options": {"feature_columns": ["x"]}},
    "output": {"uri": "/data/out"},
}


def write_config(folder: Path, document: dict, name: str = "scores") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_minimal_config_gets_every_default(tmp_path):
    config = load_pipeline_config(write_config(tmp_path, MINIMAL))
    assert config.dag_id == "nightshard_scores"
    assert config.section("sharding")["target_rows"] == 100000
    assert config.section("backend")["kind"] == "local"
    assert config.section("input")["marker"] == "_SUCCESS"
    assert config.document["max_active_runs"] == 1


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda d: d["input"].pop("id_column"), "input.id_column", "add 'id_column'"),
        (lambda d: d["model"].update(versoin="v2"), "model", "misspelt key"),
        (lambda d: d.update(backend={"kind": "slurm"}), "backend.kind", "use one of ['local', 'gke']"),
        (lambda d: d["model"].update(version="v1; rm -rf /"), "model.version", "allowed characters"),
        (lambda d: d.update(retries=-1), "retries", "Retries per task"),
    ],
)
def test_broken_config_names_file_field_and_fix(tmp_path, change, field, fix):
    document = yaml.safe_load(yaml.safe_dump(MINIMAL))
    change(document)
    path = write_config(tmp_path, document)
    with pytest.raises(PipelineConfigError) as raised:
        load_pipeline_config(path)
    message = str(raised.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert fix in message


def test_name_must_match_file_name(tmp_path):
    path = write_config(tmp_path, MINIMAL, name="other")
    with pytest.raises(PipelineConfigError, match="rename the file to scores.yaml"):
        load_pipeline_config(path)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "scores.yaml"
    path.write_text("name: scores\ninput: [unclosed\n")
    with pytest.raises(PipelineConfigError, match=r"not valid YAML at line \d+"):
        load_pipeline_config(path)


def test_environment_expansion(monkeypatch):
    monkeypatch.setenv("BUCKET", "gs://features")
    assert expand_environment("${BUCKET}/risk") == "gs://features/risk"
    assert expand_environment("${UNSET_FOR_TEST:-/tmp}/x") == "/tmp/x"
    with pytest.raises(ValueError, match="UNSET_FOR_TEST is not set"):
        expand_environment("${UNSET_FOR_TEST}/x")


def test_shipped_demo_configs_are_valid():
    folder = Path(__file__).resolve().parents[1] / "dags" / "pipelines"
    names = sorted(load_pipeline_config(path).name for path in folder.glob("*.yaml"))
    assert names == ["review_sentiment", "tabular_risk", "text_embeddings"]


def test_readme_config_reference_is_current():
    from nightshard.readme_reference import README, with_reference

    text = README.read_text()
    assert text == with_reference(text), "run: PYTHONPATH=plugins python -m nightshard.readme_reference"
