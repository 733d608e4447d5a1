"""The manifest of a published partition: what is in it, where it came from, what made it."""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nightshard.handoffs import CostReport, PlanDocument, ShardResultDocument, ValidationReport

MANIFEST_VERSION = 1
NIGHTSHARD_VERSION = "0.1.0"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Release plus commit: NIGHTSHARD_CODE_VERSION from the image build, else the git checkout."""
    if os.environ.get("NIGHTSHARD_CODE_VERSION"):
        return os.environ["NIGHTSHARD_CODE_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{NIGHTSHARD_VERSION}+{commit}"
    except (OSError, subprocess.SubprocessError):
        return NIGHTSHARD_VERSION


def build_manifest(
    *,
    plan: PlanDocument,
    results: Sequence[ShardResultDocument],
    validation: ValidationReport,
    model: dict[str, Any],
    files: list[dict[str, Any]],
    quarantine_files: list[dict[str, Any]],
    cost: CostReport,
) -> dict[str, Any]:
    started = min((r["started_at"] for r in results), default="")
    finished = max((r["finished_at"] for r in results), default="")
    return {
        "manifest_version": MANIFEST_VERSION,
        "pipeline": plan["pipeline"],
        "ds": plan["ds"],
        "run_id": plan["run_id"],
        "model": model,
        "input": {
            "partition": plan["input_partition"],
            "files": plan["input_files"],
            "rows": plan["input_rows"],
        },
        "rows": {
            "input": plan["input_rows"],
            "output": sum(f["rows"] for f in files),
            "quarantined": sum(f["rows"] for f in quarantine_files),
            **_truncated_rows(results),
        },
        "files": files,
        "quarantine_files": quarantine_files,
        "schema": results[0]["output_columns"] if results else {},
        "histogram": validation.get("histogram"),
        "drift_psi": validation.get("drift_psi"),
        "validation": validation.get("checks", []),
        "timings": {
            "workers_started_at": started,
            "workers_finished_at": finished,
            "worker_seconds": sum(r["wall_seconds"] for r in results),
            "stage_seconds": _sum_stages(results),
            "shards": {r["shard_id"]: r["wall_seconds"] for r in results},
        },
        "cost": {key: value for key, value in cost.items() if key != "shards"},
        "code_version": code_version(),
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _truncated_rows(results: Sequence[ShardResultDocument]) -> dict[str, int]:
    """{"truncated": n} when the handler marks rows it cut to the model's context; {} when it never cuts."""
    counts = [r["rows_truncated"] or 0 for r in results if r.get("rows_truncated") is not None]
    return {"truncated": sum(counts)} if counts else {}


def _sum_stages(results: Sequence[ShardResultDocument]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for result in results:
        for stage, seconds in result.get("stage_seconds", {}).items():
            totals[stage] = totals.get(stage, 0.0) + seconds
    return totals
