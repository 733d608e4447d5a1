"""Pipeline configs: one YAML file per pipeline, validated, defaults filled, environment expanded.

A config that fails validation raises `PipelineConfigError`, whose message names the file, the field
and the fix; the DAG factory turns those into one import error without touching the other pipelines.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from nightshard.backends.gke.settings import GKE_SETTINGS_SCHEMA, gke_settings_problem
from nightshard.config.schema import build_pipeline_schema
from nightshard.config.sections import (
    BackendSettings,
    CostSettings,
    InputSettings,
    ModelSettings,
    NotifySettings,
    OutputSettings,
    ShardingSettings,
    ValidationSettings,
)
from nightshard_worker.contract import RuntimeSpec

# Where the DAG factory looks for configs unless NIGHTSHARD_PIPELINES_DIR says otherwise.
DEFAULT_PIPELINES_DIR = Path(__file__).resolve().parents[3] / "dags" / "pipelines"

# Where the embedded default keeps data, logs and the outbox when NIGHTSHARD_HOME is not set.
DEFAULT_HOME = Path(__file__).resolve().parents[3] / "var"
BUILTIN_VARIABLES = {"NIGHTSHARD_HOME": str(DEFAULT_HOME)}

_ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class PipelineConfigError(ValueError):
    """A pipeline config that cannot become a DAG: file, field and fix in one message."""

    def __init__(self, source: str, field: str, problem: str, fix: str):
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{source}: field '{field}': {problem}. Fix: {fix}")


@lru_cache(maxsize=1)
def pipeline_schema() -> dict[str, Any]:
    return build_pipeline_schema(GKE_SETTINGS_SCHEMA)


@dataclass(frozen=True)
class PipelineConfig:
    """A validated pipeline config with every default filled in; its sections typed (`config.input.uri`)."""

    source: str
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def dag_id(self) -> str:
        return f"nightshard_{self.name}"

    @property
    def description(self) -> str:
        return str(self.document.get("description", ""))

    @property
    def owner(self) -> str:
        return str(self.document["owner"])

    @property
    def tags(self) -> list[str]:
        return list(self.document["tags"])

    @property
    def retries(self) -> int:
        return int(self.document["retries"])

    @property
    def retry_delay_seconds(self) -> int:
        return int(self.document["retry_delay_seconds"])

    @property
    def max_preemptions(self) -> int:
        return int(self.document["max_preemptions"])

    @property
    def max_active_runs(self) -> int:
        return int(self.document["max_active_runs"])

    @property
    def input(self) -> InputSettings:
        return InputSettings.from_section(self.document["input"])

    @property
    def model(self) -> ModelSettings:
        return ModelSettings.from_section(self.document["model"])

    @property
    def sharding(self) -> ShardingSettings:
        return ShardingSettings.from_section(self.document["sharding"])

    @property
    def output(self) -> OutputSettings:
        return OutputSettings.from_section(self.document["output"])

    @property
    def validation(self) -> ValidationSettings:
        return ValidationSettings.from_section(self.document["validation"])

    @property
    def backend(self) -> BackendSettings:
        return BackendSettings.from_section(self.document["backend"])

    @property
    def cost(self) -> CostSettings:
        return CostSettings.from_section(self.document["cost"])

    @property
    def notify(self) -> NotifySettings:
        return NotifySettings.from_section(self.document["notify"])

    @property
    def runtime(self) -> RuntimeSpec:
        """What each shard's worker is told: the `runtime` section plus the per-shard bad-row bound."""
        return RuntimeSpec(**self.document["runtime"],
                           max_bad_row_fraction=self.validation.max_bad_row_fraction_per_shard)


def pipelines_dir() -> Path:
    return Path(os.environ.get("NIGHTSHARD_PIPELINES_DIR", DEFAULT_PIPELINES_DIR))


def config_files(folder: Path | None = None) -> list[Path]:
    folder = folder or pipelines_dir()
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read, validate and complete one config file."""
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise PipelineConfigError(source, "<file>", f"not valid YAML at {where}", "fix the YAML syntax") from None
    if not isinstance(document, dict):
        raise PipelineConfigError(source, "<file>", "the file is not a mapping", "start with 'name: <pipeline>'")
    return validate_pipeline_document(document, source)


def validate_pipeline_document(document: dict[str, Any], source: str = "<config>") -> PipelineConfig:
    schema = pipeline_schema()
    gke_section = (document.get("backend") or {}).get("gke") if isinstance(document.get("backend"), dict) else None
    if isinstance(gke_section, dict):
        # Before the schema: a cluster-level mistake gets its own fix, not "use one of [...]".
        problem = gke_settings_problem(gke_section)
        if problem:
            field_name, message, fix = problem
            raise PipelineConfigError(source, f"backend.gke.{field_name}", message, fix)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(document),
        key=lambda error: (len(error.absolute_path), list(map(str, error.absolute_path))),
    )
    if errors:
        raise _explain(errors[0], source)
    completed = fill_defaults(schema, copy.deepcopy(document))
    _price_the_pods_accelerator(document, completed, source)
    stem = Path(source).stem
    if source != "<config>" and completed["name"] != stem:
        raise PipelineConfigError(
            source, "name", f"name '{completed['name']}' differs from the file name '{stem}'",
            f"rename the file to {completed['name']}.yaml or set name: {stem}",
        )
    return PipelineConfig(source=source, document=completed)


def _price_the_pods_accelerator(document: dict[str, Any], completed: dict[str, Any], source: str) -> None:
    """A GKE pipeline with GPUs states its device once: cost.accelerator defaults to backend.gke.accelerator,
    and stating a different one is an error naming both (the bill would price a device the pods never get)."""
    backend = completed["backend"]
    if backend["kind"] != "gke" or not backend["gke"].get("gpus_per_pod"):
        return
    pods_run_on = backend["gke"]["accelerator"]
    stated = (document.get("cost") or {}).get("accelerator")
    if stated is None:
        completed["cost"]["accelerator"] = pods_run_on
    elif stated != pods_run_on:
        raise PipelineConfigError(
            source, "cost.accelerator",
            f"cost.accelerator is {stated!r} but backend.gke.accelerator is {pods_run_on!r}: the run would be "
            "priced for a device its pods do not run on",
            "drop cost.accelerator (on GKE it follows backend.gke.accelerator), or set both to the same label",
        )


def fill_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Add every schema default that the document leaves out, objects included."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for key, child in schema.get("properties", {}).items():
        if key not in value:
            if "default" in child:
                value[key] = copy.deepcopy(child["default"])
            elif child.get("type") == "object" and "properties" in child:
                value[key] = {}
        if key in value:
            value[key] = fill_defaults(child, value[key])
    return value


def expand_environment(text: str) -> str:
    """Replace ${VAR} and ${VAR:-default}; NIGHTSHARD_HOME defaults to <repo>/var; others must be set."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        raise KeyError(name)

    try:
        return _ENV_REFERENCE.sub(replace, text)
    except KeyError as missing:
        raise ValueError(
            f"environment variable {missing.args[0]} is not set and '{text}' gives no default: set it or "
            f"write ${{{missing.args[0]}:-<default>}}"
        ) from None


def _explain(error: jsonschema.ValidationError, source: str) -> PipelineConfigError:
    field = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        name = f"{field}.{missing}" if field != "<top level>" else missing
        return PipelineConfigError(source, name, "is required", f"add '{missing}' (see docs/config.md)")
    if error.validator == "additionalProperties":
        return PipelineConfigError(
            source, field, error.message, "remove or correct the misspelt key (see docs/config.md)"
        )
    if error.validator == "enum":
        return PipelineConfigError(
            source, field, f"{error.instance!r} is not allowed", f"use one of {error.validator_value}"
        )
    if error.validator == "pattern":
        return PipelineConfigError(
            source, field, f"{error.instance!r} does not match {error.validator_value}", "use only the allowed characters"
        )
    description = error.schema.get("description", "")
    return PipelineConfigError(source, field, error.message, description or "see docs/config.md")
