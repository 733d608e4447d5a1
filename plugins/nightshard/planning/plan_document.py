"""The plan document: written once to the staging area, read back by every task after `plan`.

XCom carries a small pointer (`{"plan_uri": ...}`) and, as plan's return value, the per-shard
tickets infer maps over; the document itself (input file list, every ticket, the estimate) never
goes through the metadata database, so its size can follow the partition without loading it.
"""

from __future__ import annotations

from typing import Any

from nightshard import storage
from nightshard.failures import ExplainedError

PLAN_FILE = "_plan.json"


def plan_uri(staging: str) -> str:
    return storage.join(staging, PLAN_FILE)


def write_plan(document: dict[str, Any]) -> dict[str, Any]:
    """Store the document beside the run's staged files; returns the pointer for XCom.

    A dry run writes nothing anywhere, so its pointer carries the document's small header only;
    every task after infer is skipped in a dry run and never loads it.
    """
    header = {key: document[key] for key in ("pipeline", "ds", "model_version", "run_id", "dry_run")}
    if document["dry_run"]:
        return {**header, "plan_uri": None}
    uri = plan_uri(document["staging"])
    storage.write_json_atomic(uri, document)
    return {**header, "plan_uri": uri}


class PlanDocumentGone(ExplainedError, FileNotFoundError):
    """The stored plan a pointer names was removed (a reprocess=all rerun, or a publish)."""


def load_plan(pointer: dict[str, Any]) -> dict[str, Any]:
    """The document a pointer names; an error that says what to do when it is gone."""
    uri = pointer.get("plan_uri")
    if not uri:
        raise ValueError(f"the plan of run {pointer.get('run_id')} was a dry run: it has no stored plan document")
    if not storage.exists(uri):
        raise PlanDocumentGone(
            f"plan document {uri} of run {pointer.get('run_id')} is gone (a later run of ds={pointer.get('ds')} "
            "with reprocess=all, or a publish, removed the staging area).",
            next_step="clear this run from plan",
        )
    return storage.read_json(uri)
