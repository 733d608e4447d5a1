"""`publish`: turn a validated staging area into the published partition, `_SUCCESS` written last.

A reader never sees old and new files mixed, nor a partition without `_SUCCESS` that looks complete:
- local filesystem: the new partition is built beside the old one (hard links from staging, no data
  copied), given its manifest and `_SUCCESS`, then swapped in with two renames;
- object stores: the old `_SUCCESS` goes first (the partition stops looking complete), then the old
  files, then the new files, the manifest, and `_SUCCESS` last.
Staging is removed only after the swap, so a publish that dies half-way is simply run again.
"""

from __future__ import annotations

import logging
import os
import posixpath
import uuid
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from nightshard import layout, storage
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.failures import ExplainedError
from nightshard.handoffs import (
    CostReport,
    PlanDocument,
    PublishedPartition,
    ShardResultDocument,
    ValidationReport,
)
from nightshard.publishing.manifest import build_manifest
from nightshard_worker import storage as worker_storage

log = logging.getLogger(__name__)


def publish_run(
    config: PipelineConfig,
    plan: PlanDocument,
    results: Sequence[ShardResultDocument],
    validation: ValidationReport,
    cost: CostReport,
) -> PublishedPartition:
    _check_staging_owner(plan)
    results = sorted(results, key=lambda r: r["shard_id"])
    final = layout.output_partition(config, plan["model_version"], plan["ds"])
    staged = _staged_files(results)
    files = [entry for entry in staged if not entry["path"].startswith(layout.QUARANTINE_DIR)]
    quarantine = [entry for entry in staged if entry["path"].startswith(layout.QUARANTINE_DIR)]
    manifest = build_manifest(
        plan=plan,
        results=results,
        validation=validation,
        model={"handler": config.model.handler, "version": plan["model_version"],
               "artifact": layout.model_artifact(config, plan["model_version"])},
        files=[{key: e[key] for key in ("path", "rows", "bytes", "sha256")} for e in files],
        quarantine_files=[{key: e[key] for key in ("path", "rows", "bytes", "sha256")} for e in quarantine],
        cost=cost,
    )
    if storage.is_local(final):
        _publish_by_swap(final, staged, manifest)
    else:
        _publish_in_place(final, staged, manifest)
    storage.remove(plan["staging"], recursive=True)
    storage.remove_if_empty(posixpath.dirname(plan["staging"].rstrip("/")))
    manifest_uri = storage.join(final, layout.MANIFEST_FILE)
    log.info(
        "published %s: %s rows in %s files, %s quarantined; manifest %s",
        final, manifest["rows"]["output"], len(files), manifest["rows"]["quarantined"], manifest_uri,
    )
    return {
        "output_partition": final,
        "manifest_uri": manifest_uri,
        "rows": manifest["rows"],
        "files": len(files),
        "code_version": manifest["code_version"],
    }


class StagingTakenOver(ExplainedError, AirflowFailException):
    """A later run of the same date planned over this run's staging area."""


def _check_staging_owner(plan: PlanDocument) -> None:
    owner_uri = storage.join(plan["staging"], layout.STAGING_OWNER_FILE)
    owner = storage.read_json(owner_uri)["run_id"] if storage.exists(owner_uri) else None
    if owner != plan["run_id"]:
        raise StagingTakenOver(
            f"run {plan['run_id']} does not own {plan['staging']} any more (owner: {owner}): another run of "
            f"ds={plan['ds']} planned after it. Nothing was published by this run, so the two runs' files "
            "cannot mix.",
            next_step="let the other run publish; clear this run only if that one failed.",
        )


def _staged_files(results: Sequence[ShardResultDocument]) -> list[dict[str, Any]]:
    """Each shard's output and, when it has quarantined rows, its quarantine file."""
    staged = []
    for result in results:
        staged.append({
            "source": result["output_path"],
            "path": posixpath.basename(result["output_path"]),
            "rows": result["rows_out"],
            "bytes": storage.file_size(result["output_path"]),
            "sha256": result["output_sha256"] or storage.sha256_of(result["output_path"]),
        })
        quarantine = result.get("quarantine_path")
        if quarantine and storage.exists(quarantine):
            staged.append({
                "source": quarantine,
                "path": posixpath.join(layout.QUARANTINE_DIR, posixpath.basename(quarantine)),
                "rows": result["rows_quarantined"],
                "bytes": storage.file_size(quarantine),
                "sha256": storage.sha256_of(quarantine),
            })
    for entry in staged:
        if entry["path"] == layout.MANIFEST_FILE or entry["path"] == layout.SUCCESS_MARKER:
            raise ValueError(f"refusing to publish a data file named {entry['path']}")
    return staged


def _publish_by_swap(final: str, staged: list[dict[str, Any]], manifest: dict[str, Any]) -> None:
    _, final_path = storage.filesystem(final)
    table_path = os.path.dirname(final_path)
    partition_name = os.path.basename(final_path)
    token = uuid.uuid4().hex[:8]
    building = os.path.join(table_path, f"_publishing-{partition_name}-{token}")
    replaced = os.path.join(table_path, f"_replaced-{partition_name}-{token}")
    _remove_leftovers(table_path, partition_name)
    for entry in staged:
        target = os.path.join(building, entry["path"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(storage.filesystem(entry["source"])[1], target)
    storage.write_json_atomic(os.path.join(building, layout.MANIFEST_FILE), manifest)
    storage.write_text_atomic(os.path.join(building, layout.SUCCESS_MARKER), "")
    worker_storage.fsync_directory(building)
    if os.path.exists(final_path):
        os.rename(final_path, replaced)
    os.rename(building, final_path)
    worker_storage.fsync_directory(table_path)
    storage.remove(replaced, recursive=True)


def _publish_in_place(final: str, staged: list[dict[str, Any]], manifest: dict[str, Any]) -> None:
    storage.remove(storage.join(final, layout.SUCCESS_MARKER))
    fs, final_path = storage.filesystem(final)
    if fs.exists(final_path):
        for existing in fs.find(final_path):
            fs.rm(existing)
    for entry in staged:
        fs.copy(storage.filesystem(entry["source"])[1], f"{final_path}/{entry['path']}")
    storage.write_json_atomic(storage.join(final, layout.MANIFEST_FILE), manifest)
    storage.write_text_atomic(storage.join(final, layout.SUCCESS_MARKER), "")


def _remove_leftovers(table_path: str, partition_name: str) -> None:
    """A publish that died before its swap leaves a half-built folder; readers skip '_' folders."""
    if not os.path.isdir(table_path):
        return
    for name in os.listdir(table_path):
        if name.startswith((f"_publishing-{partition_name}-", f"_replaced-{partition_name}-")):
            storage.remove(os.path.join(table_path, name), recursive=True)
