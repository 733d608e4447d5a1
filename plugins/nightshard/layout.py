"""Where a pipeline's data lives: the one place that knows the folder layout.

    <input.uri>/ds=<date>/*.parquet + _SUCCESS                       the upstream partition
    <output.uri>/<pipeline>/model_version=<v>/ds=<date>/             the published partition
        part-<shard>.parquet, _quarantine/part-<shard>.parquet, _manifest.json, _SUCCESS (last)
    <output.uri>/<pipeline>/model_version=<v>/_staging/ds=<date>/    work in progress, per date
    <output.uri>/<pipeline>/_reports/model_version=<v>/ds=<date>/    cost report, run report
"""

from __future__ import annotations

from nightshard.config.pipeline_config import PipelineConfig, expand_environment
from nightshard.storage import join

SUCCESS_MARKER = "_SUCCESS"
MANIFEST_FILE = "_manifest.json"
QUARANTINE_DIR = "_quarantine"
ID_INDEX_DIR = "_ids"  # each shard's ids by hash bucket, for validate's uniqueness check
STAGING_OWNER_FILE = "_owner.json"  # the run id of the latest plan of a date: only it may publish


def input_root(config: PipelineConfig) -> str:
    return expand_environment(config.input.uri)


def input_partition(config: PipelineConfig, ds: str) -> str:
    return join(input_root(config), f"ds={ds}")


def input_marker(config: PipelineConfig, ds: str) -> str:
    return join(input_partition(config, ds), config.input.marker)


def output_root(config: PipelineConfig) -> str:
    return expand_environment(config.output.uri)


def output_table(config: PipelineConfig, model_version: str) -> str:
    return join(output_root(config), config.name, f"model_version={model_version}")


def output_partition(config: PipelineConfig, model_version: str, ds: str) -> str:
    return join(output_table(config, model_version), f"ds={ds}")


def staging_partition(config: PipelineConfig, model_version: str, ds: str) -> str:
    return join(output_table(config, model_version), "_staging", f"ds={ds}")


def reports_folder(config: PipelineConfig, model_version: str, ds: str) -> str:
    return join(output_root(config), config.name, "_reports", f"model_version={model_version}", f"ds={ds}")


def model_artifact(config: PipelineConfig, model_version: str) -> str | None:
    artifact = config.model.artifact
    if not artifact:
        return None
    return expand_environment(artifact).replace("{model_version}", model_version)


def outbox_folder(config: PipelineConfig) -> str:
    return expand_environment(config.notify.outbox)
