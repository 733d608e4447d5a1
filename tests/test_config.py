"""Pipeline configs: a broken config names the file, the field and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nightshard.config.pipeline_config import PipelineConfigError, expand_environment, load_pipeline_config

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
    assert config.sharding.target_rows == 100000
    assert config.backend.kind == "local"
    assert config.input.marker == "_SUCCESS"
    assert config.max_active_runs == 1


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda d: d["input"].pop("id_column"), "input.id_column", "add 'id_column'"),
        (lambda d: d["model"].update(versoin="v2"), "model", "misspelt key"),
        (lambda d: d.update(backend={"kind": "slurm"}), "backend.kind", "use one of ['local', 'gke']"),
        (lambda d: d["model"].update(version="v1; rm -rf /"), "model.version", "allowed characters"),
        (lambda d: d.update(retries=-1), "retries", "Retries per task"),
        (lambda d: d.update(backend={"kind": "gke", "gke": {"image": "w:1", "accelerator": "nvidia-a100-40gb"}}),
         "backend.gke.accelerator", "use 'nvidia-tesla-a100'"),
        (lambda d: d.update(backend={"kind": "gke", "gke": {"image": "w:1", "pods_per_shard": 4}}),
         "backend.gke.pods_per_shard", "set pods_per_shard: 1"),
        (lambda d: d.update(backend={"kind": "gke", "gke": {"image": "w:1", "provisioning": "queued"}}),
         "backend.gke.provisioning", "use provisioning: flex-start"),
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


def test_nvidia_tesla_a100_is_accepted(tmp_path):
    document = {**MINIMAL, "backend": {"kind": "gke", "gke": {"image": "w:1", "accelerator": "nvidia-tesla-a100"}}}
    config = load_pipeline_config(write_config(tmp_path, document))
    assert config.backend.gke["accelerator"] == "nvidia-tesla-a100"


def test_a_gke_pipeline_states_its_accelerator_once(tmp_path):
    gke = {"kind": "gke", "gke": {"image": "w:1", "accelerator": "nvidia-h100-80gb"}}
    follows = load_pipeline_config(write_config(tmp_path, {**MINIMAL, "backend": gke}))
    assert follows.cost.accelerator == "nvidia-h100-80gb"
    same = load_pipeline_config(write_config(tmp_path, {**MINIMAL, "backend": gke,
                                                        "cost": {"accelerator": "nvidia-h100-80gb"}}))
    assert same.cost.accelerator == "nvidia-h100-80gb"
    cpu_pods = {"kind": "gke", "gke": {"image": "w:1", "gpus_per_pod": 0}}
    assert load_pipeline_config(write_config(tmp_path, {**MINIMAL, "backend": cpu_pods})).cost.accelerator == "cpu"
    assert load_pipeline_config(write_config(tmp_path, MINIMAL)).cost.accelerator == "cpu"
    path = write_config(tmp_path, {**MINIMAL, "backend": gke, "cost": {"accelerator": "nvidia-l4"}})
    with pytest.raises(PipelineConfigError) as raised:
        load_pipeline_config(path)
    message = str(raised.value)
    assert str(path) in message and "field 'cost.accelerator'" in message
    assert "'nvidia-l4'" in message and "backend.gke.accelerator is 'nvidia-h100-80gb'" in message


def test_runtime_defaults_are_the_workers_own(tmp_path):
    """RuntimeSpec is the one home of runtime defaults: a config without a runtime section plans the
    worker's default spec, value for value and type for type."""
    import dataclasses

    from nightshard_worker.contract import RuntimeSpec

    planned = load_pipeline_config(write_config(tmp_path, MINIMAL)).runtime
    for spec_field in dataclasses.fields(RuntimeSpec):
        value = getattr(planned, spec_field.name)
        assert (value, type(value)) == (spec_field.default, type(spec_field.default)), spec_field.name


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


def test_config_reference_page_is_current():
    from nightshard_dev.config_reference import CONFIG_PAGE, render_page

    assert CONFIG_PAGE.read_text() == render_page(), "run: .venv/bin/python -m nightshard_dev.config_reference"


CONFIG_SECTIONS = ("input", "model", "runtime", "sharding", "output", "validation", "backend", "cost", "notify")
CONFIG_KEY = re.compile(r"(?<![\w/.])((?:" + "|".join(CONFIG_SECTIONS) + r")(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
FILE_SUFFIXES = {"json", "py", "pt", "tmp", "safetensors", "yaml", "parquet", "html", "png", "txt"}  # model.pt is a file


def schema_has_key(schema: dict, dotted: str) -> bool:
    node = schema
    for part in dotted.split("."):
        if node.get("type") == "object" and "properties" not in node:
            return True  # an open mapping (model.options, backend.gke.env): any key is the user's
        if part not in node.get("properties", {}):
            return False
        node = node["properties"][part]
    return True


def config_keys_named_in_docs() -> set[tuple[str, str]]:
    """(key, where) for every `section.key` in backticks in the docs, and in string literals of the code
    (f-string expressions left out: `{runtime.x}` is code, not a name shown to the user)."""
    import glob
    import io
    import tokenize

    repo = Path(__file__).resolve().parents[1]
    named = set()
    for doc in ["README.md", "worker/README.md", *glob.glob("docs/*.md", root_dir=repo),
                *glob.glob("bench/*.md", root_dir=repo), "helm/nightshard/values.yaml"]:
        text = (repo / doc).read_text()
        spans = re.findall(r"`([^`\n]+)`", text) if doc.endswith(".md") else [text]
        for span in spans:
            named.update((key, doc) for key in CONFIG_KEY.findall(span))
    for source in [*glob.glob("plugins/nightshard/**/*.py", root_dir=repo, recursive=True),
                   *glob.glob("worker/src/nightshard_worker/**/*.py", root_dir=repo, recursive=True)]:
        tokens = tokenize.generate_tokens(io.StringIO((repo / source).read_text()).readline)
        for token in tokens:
            if token.type == tokenize.STRING:
                literal = re.sub(r"\{[^{}]*\}", "", token.string)
                named.update((key, source) for key in CONFIG_KEY.findall(literal))
    return {(key, where) for key, where in named if not FILE_SUFFIXES & set(key.split(".")[1:])}


def test_every_config_key_the_docs_and_messages_name_exists_in_the_schema():
    from nightshard.config.pipeline_config import pipeline_schema

    named = config_keys_named_in_docs()
    assert ("validation.max_bad_row_fraction_per_shard", "worker/src/nightshard_worker/shard_lifecycle.py") in named
    unknown = sorted((key, where) for key, where in named if not schema_has_key(pipeline_schema(), key))
    assert unknown == [], "these keys are not in the config schema (see docs/config.md)"


def test_every_schema_section_is_a_typed_section_with_exactly_the_schemas_keys(tmp_path):
    """`config.<section>.<key>` is the only way code reads a section: each typed section has the schema's
    keys, no more, no fewer, so a key added to the schema without its field fails here, not at 2 a.m."""
    import dataclasses

    from nightshard.config.pipeline_config import pipeline_schema
    from nightshard_worker.contract import RuntimeSpec

    config = load_pipeline_config(write_config(tmp_path, MINIMAL))
    for name, section_schema in pipeline_schema()["properties"].items():
        if section_schema.get("type") != "object" or "properties" not in section_schema:
            continue
        section = getattr(config, name)
        fields = {field.name for field in dataclasses.fields(section)}
        if isinstance(section, RuntimeSpec):  # the worker's spec also carries validation's per-shard bound
            fields -= {"max_bad_row_fraction"}
        assert fields == set(section_schema["properties"]), name
    assert config.input.marker == "_SUCCESS" and config.backend.kind == "local"
    assert config.runtime.max_bad_row_fraction == config.validation.max_bad_row_fraction_per_shard


def test_a_section_key_outside_the_schema_is_named():
    from nightshard.config.sections import OutputSettings

    with pytest.raises(ValueError, match=r"OutputSettings: keys \['url'\] are not in the config schema"):
        OutputSettings.from_section({"uri": "/x", "url": "/y"})
