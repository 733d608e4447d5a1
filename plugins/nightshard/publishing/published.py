"""What a pipeline has published for a model version: its partition dates, and a date's manifest.

The one reader of the published table for plan's estimate and validate's drift reference.
"""

from __future__ import annotations

import posixpath
from typing import Any

from nightshard import layout, storage
from nightshard.config.pipeline_config import PipelineConfig

_DATE_PREFIX = "ds="


def partition_dates(config: PipelineConfig, model_version: str) -> list[str]:
    """Every date with a `ds=<date>` folder in the output table, oldest first; a folder may not be
    published yet (`published_manifest` says)."""
    table = layout.output_table(config, model_version)
    fs, path = storage.filesystem(table)
    if not fs.exists(path):
        return []
    return sorted(
        posixpath.basename(entry["name"])[len(_DATE_PREFIX):]
        for entry in fs.ls(path, detail=True)
        if entry["type"] == "directory" and posixpath.basename(entry["name"]).startswith(_DATE_PREFIX)
    )


def published_manifest(config: PipelineConfig, model_version: str, ds: str) -> dict[str, Any] | None:
    """The manifest of `ds`'s published partition; None while its _SUCCESS marker is missing."""
    partition = layout.output_partition(config, model_version, ds)
    if not storage.exists(storage.join(partition, layout.SUCCESS_MARKER)):
        return None
    manifest: dict[str, Any] = storage.read_json(storage.join(partition, layout.MANIFEST_FILE))
    return manifest
