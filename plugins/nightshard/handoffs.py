"""What each task hands the next, typed: the DAG's data flow in one page.

    plan ──ShardTicket[]──> infer ──ShardResultDocument[]──> validate ──ValidationReport──> publish
      └──PlanPointer (XCom key PLAN_POINTER_KEY) ─> validate, cost, publish, notify load the PlanDocument
    cost ──CostReport──> publish ──PublishedPartition──> notify

They travel through XCom as JSON, so they are TypedDicts: plain dicts at run time (what Airflow
stores and what the UI shows), checked by mypy where they are built and read. A key written here and
nowhere in the producer, or read by a consumer and not written here, is a type error.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired[...] only from evaluated
# annotations (its __optional_keys__), and the tests check them.
from typing import Any, NotRequired, TypedDict

# plan pushes the pointer under this key beside its return value (the tickets), so the pointer and the
# tickets each cross XCom once.
PLAN_POINTER_KEY = "plan"


class ShardTicket(TypedDict):
    """One mapped infer task's input: which spec to run and where its result will be."""

    shard_id: str
    shard_index: int
    shard_count: int
    rows: int
    model_version: str
    spec_uri: str
    result_uri: str
    already_committed: bool  # an earlier attempt of this date left a result for this exact spec


class PlanPointer(TypedDict):
    """What XCom carries of the plan: its header, and where the document lives (None: a dry run)."""

    pipeline: str
    ds: str
    model_version: str
    run_id: str
    dry_run: bool
    plan_uri: str | None


class InputFile(TypedDict):
    path: str
    rows: int
    bytes: int


class PlanDocument(TypedDict):
    """`_plan.json` in the run's staging area: everything plan decided."""

    pipeline: str
    ds: str
    model_version: str
    run_id: str
    dry_run: bool
    input_partition: str
    input_files: list[InputFile]
    input_rows: int
    input_columns: dict[str, str]  # name -> Arrow type string
    staging: str
    planned_shards: list[ShardTicket]  # every shard of the partition, committed ones included
    sharding: dict[str, Any]  # asked_rows, shard_rows, max_mapped_tasks, grown
    plan_seconds: dict[str, float]
    id_index_buckets: int  # 0: uniqueness not checked
    estimate: dict[str, Any] | None
    placement: str | None
    planned_at: str
    shards: list[ShardTicket]  # what infer maps over: [] in a dry run


class ShardResultDocument(TypedDict):
    """An infer task's return value: the worker's ShardResult (`nightshard_worker.contract`) as JSON, plus
    what the backend adds. A test keeps these keys equal to the contract's fields."""

    shard_id: str
    status: str  # succeeded | failed | preempted
    spec_fingerprint: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    output_path: str
    output_bytes: int
    output_sha256: str
    quarantine_path: str
    output_columns: dict[str, str]  # name -> Arrow type string
    started_at: str
    finished_at: str
    wall_seconds: float
    stage_seconds: dict[str, float]
    device: str
    device_name: str
    peak_rss_bytes: int
    peak_device_memory_bytes: int
    resumed_from_rows: int
    rows_truncated: int | None
    input_tokens: int
    output_tokens: int
    attempts: int
    earlier_attempts_seconds: float
    histogram: dict[str, Any] | None  # {"edges": [...], "counts": [...]}
    error: str
    contract_version: int
    queue_wait_seconds: NotRequired[float]  # GKE only: pod creation to container start (Kueue, DWS, node start)


class CheckOutcome(TypedDict):
    name: str
    passed: bool
    detail: str
    severity: str


class ValidationReport(TypedDict):
    checks: list[CheckOutcome]
    histogram: dict[str, Any] | None
    drift_psi: float | None
    previous_ds: str | None
    previous_histogram: dict[str, Any] | None  # publish replaces a rerun's partition; the report still compares


class CostReport(TypedDict):
    """cost_report.json, and cost's return value (with `report_uri`)."""

    pipeline: str
    ds: str
    model_version: str
    run_id: str
    accelerator: str
    provisioning: str
    currency: str
    accelerator_hours: float
    total_cost: float
    cost_per_million_rows: float
    rows: int
    queue_wait_seconds: float
    attempts: int
    price_per_accelerator_hour: float
    price_source: str
    price_recorded: str
    shards: list[dict[str, Any]]
    report_uri: str
    input_tokens: NotRequired[int]  # token fields only for pipelines that count tokens (llm)
    output_tokens: NotRequired[int]
    tokens_per_second: NotRequired[float]
    cost_per_million_input_tokens: NotRequired[float]
    cost_per_million_output_tokens: NotRequired[float]
    output_token_weight: NotRequired[float]


class PublishedPartition(TypedDict):
    output_partition: str
    manifest_uri: str
    rows: dict[str, int]
    files: int
    code_version: str
    # added by the run report after publish, which neither can fail
    run_report_uri: NotRequired[str | None]
    metrics_pushed: NotRequired[bool]


class ReportReceipt(TypedDict):
    run_report_uri: str | None
    metrics_pushed: bool
