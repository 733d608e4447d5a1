"""The plan document: written once to the staging area, read back by every task after `plan`.

XCom carries a small pointer (`{"plan_uri": ...}`) and, as plan's return value, the per-shard
tickets infer maps over; the document itself (input file list, every ticket, the estimate) never
goes through the metadata database, so its size can follow the partition without loading it.
"""

from __future__ import annotations

from nightshard import storage
from nightshard.failures import ExplainedError
from nightshard.handoffs import PlanDocument, PlanPointer

PLAN_FILE = "_plan.json"


def plan_uri(staging: str) -> str:
    return storage.join(staging, PLAN_FILE)


def write_plan(document: PlanDocument) -> PlanPointer:
    """Store the document beside the run's staged files; returns the pointer for XCom.

    A dry run writes nothing anywhere, so its pointer carries the document's small header only;
    every task after infer is skipped in a dry run and never loads it.
    """
    pointer = PlanPointer(pipeline=document["pipeline"], ds=document["ds"], model_version=document["model_version"],
                          run_id=document["run_id"], dry_run=document["dry_run"], plan_uri=None)
    if document["dry_run"]:
        return pointer
    uri = plan_uri(document["staging"])
    storage.write_json_atomic(uri, document)
    return {**pointer, "plan_uri": uri}


class PlanDocumentGone(ExplainedError, FileNotFoundError):
    """The stored plan a pointer names was removed (a reprocess=all rerun, or a publish)."""


def load_plan(pointer: PlanPointer) -> PlanDocument:
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
    document: PlanDocument = storage.read_json(uri)
    return document
