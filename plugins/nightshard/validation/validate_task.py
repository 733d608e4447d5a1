"""`validate`: reconcile rows, check the staged files and the drift; only a clean run goes on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from nightshard import layout, storage
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.failures import ExplainedError
from nightshard.handoffs import CheckOutcome, PlanDocument, ShardResultDocument, ValidationReport
from nightshard.publishing.published import partition_dates, published_manifest
from nightshard.validation.rules import (
    Check,
    OutputFooter,
    check_outputs,
    drift_check,
    merge_histograms,
    reconcile,
    render_checks,
)

log = logging.getLogger(__name__)


class ValidationFailed(ExplainedError, AirflowFailException):
    """Not published: the message lists the checks that failed. Retrying would not change them."""


def validate_run(config: PipelineConfig, plan: PlanDocument, results: Sequence[ShardResultDocument]) -> ValidationReport:
    settings = config.validation
    checks = reconcile(plan, results, settings.max_quarantine_fraction)
    if all(check.passed for check in checks):
        footers = dict(zip([r["shard_id"] for r in results],
                           storage.map_bounded(read_output_footer, [r["output_path"] for r in results])))
        id_column = config.input.id_column
        checks += check_outputs(
            results, footers, id_column=id_column, input_id_type=plan["input_columns"][id_column]
        )
        if plan.get("id_index_buckets"):
            from nightshard.validation.id_check import check_unique_ids

            checks.append(check_unique_ids(
                storage.join(plan["staging"], layout.ID_INDEX_DIR), [t["shard_id"] for t in plan["planned_shards"]],
                buckets=plan["id_index_buckets"], id_column=id_column))
    histogram = merge_histograms([r.get("histogram") for r in results])
    previous = previous_published_manifest(config, plan["model_version"], plan["ds"])
    drift, psi = drift_check(
        histogram,
        previous["histogram"] if previous else None,
        previous_label=previous_run_label(previous, plan["ds"]),
        warn_above=settings.drift_psi_warn,
        fail_above=settings.drift_psi_fail,
    )
    checks.append(drift)
    report = render_checks(checks)
    log.info("validation of %s ds=%s:\n%s", config.name, plan["ds"], report)
    blocking = [check for check in checks if check.blocks_publish]
    if blocking:
        raise ValidationFailed(
            f"{len(blocking)} check(s) failed, nothing was published:\n{render_checks(blocking)}\n",
            next_step="the failing check names the shard; inspect its result and log, fix the cause, then "
            "clear the failed shard's infer task and this task (earlier shards are kept).",
        )
    return {
        "checks": [_as_dict(check) for check in checks],
        "histogram": histogram,
        "drift_psi": psi,
        "previous_ds": previous["ds"] if previous else None,
        # publish replaces a rerun's previous partition; the run report still compares with it
        "previous_histogram": previous.get("histogram") if previous else None,
    }


def read_output_footer(uri: str) -> OutputFooter:
    import pyarrow.parquet as pq

    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    schema = metadata.schema.to_arrow_schema()
    null_counts = {name: 0 for name in schema.names}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            top_level = column.path_in_schema.split(".")[0]
            stats = column.statistics
            if stats is not None and stats.has_null_count and top_level in null_counts:
                null_counts[top_level] += stats.null_count
    return OutputFooter(
        rows=metadata.num_rows,
        columns={field.name: str(field.type) for field in schema},
        null_counts=null_counts,
    )


def previous_published_manifest(config: PipelineConfig, model_version: str, ds: str, *, same_date: bool = True
                                ) -> dict[str, Any] | None:
    """The manifest of the latest published date before `ds` for the same model version; for a rerun with
    none before it, `ds`'s own published run (the one this run will replace)."""
    dates = partition_dates(config, model_version)
    for earlier in [*reversed([d for d in dates if d < ds]), *(d for d in dates if d == ds and same_date)]:
        manifest = published_manifest(config, model_version, earlier)
        if manifest is not None:
            return manifest
    return None


def previous_run_label(previous: dict[str, Any] | None, ds: str) -> str:
    if previous is None:
        return ""
    if previous["ds"] == ds:
        return f"the previous run of this date (ds={ds})"
    return f"ds={previous['ds']}"


def _as_dict(check: Check) -> CheckOutcome:
    return {"name": check.name, "passed": check.passed, "detail": check.detail, "severity": check.severity}
