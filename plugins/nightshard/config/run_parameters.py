"""A run's parameters: the trigger form's Params, and their resolution inside a task.

The same rules guard both doors: the Params' JSON schema rejects bad input in the UI before a run
exists, and `resolve_run_parameters` checks again inside the task, because `airflow dags trigger
--conf` and the REST API can bypass the form.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Param

from nightshard.config.pipeline_config import PipelineConfig
from nightshard.config.schema import DATE, MODEL_VERSION
from nightshard.failures import PermanentError

REPROCESS_MODES = ("missing", "all")


class RunParameterError(PermanentError):
    """A param that must not reach a path or a command line."""


@dataclass(frozen=True)
class RunParameters:
    ds: str
    model_version: str
    shard_rows: int
    reprocess: str
    dry_run: bool


def build_params(config: PipelineConfig) -> dict[str, Param]:
    return {
        # null, not "": the UI's trigger and backfill forms treat an empty string as a missing value
        "ds": Param(
            None,
            type=["null", "string"],
            pattern=DATE,
            title="Partition date",
            description="YYYY-MM-DD of the input partition. Empty: the run's logical date.",
        ),
        "model_version": Param(
            config.model.version,
            type="string",
            pattern=MODEL_VERSION,
            title="Model version",
            description="Which model version scores the partition; output goes under model_version=<v>.",
        ),
        "shard_rows": Param(
            config.sharding.target_rows,
            type="integer",
            minimum=1,
            maximum=100_000_000,
            title="Rows per shard",
            description="Target rows per shard; shards are cut on row-group boundaries.",
        ),
        "reprocess": Param(
            "missing",
            type="string",
            enum=list(REPROCESS_MODES),
            title="Reprocess mode",
            description="missing: keep shards already scored for this date; all: score every shard again.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan and print the shards without scoring or publishing anything.",
        ),
    }


def requested_ds(params: dict[str, Any], logical_date: Any) -> str | None:
    """The date a run asks for, unchecked: the ds param when set, else its logical date; None with neither.

    `resolve_ds` checks it; the on-call alert names it as given, since the bad value may be the failure.
    """
    ds = str(params.get("ds") or "")
    if ds:
        return ds
    return logical_date.strftime("%Y-%m-%d") if logical_date is not None else None


def resolve_ds(params: dict[str, Any], logical_date: Any) -> str:
    """The partition date: the ds param when set, else the run's logical date; a calendar date."""
    ds = requested_ds(params, logical_date)
    if ds is None:
        raise RunParameterError(
            "this run has no logical date and no ds param: trigger it with a logical date or set ds=YYYY-MM-DD"
        )
    if not re.fullmatch(DATE, ds):
        raise RunParameterError(f"ds={ds!r} is not a date: use YYYY-MM-DD")
    try:
        dt.date.fromisoformat(ds)
    except ValueError:
        raise RunParameterError(f"ds={ds!r} is not a calendar date: use YYYY-MM-DD") from None
    return ds


def resolve_run_parameters(config: PipelineConfig, params: dict[str, Any], logical_date: Any) -> RunParameters:
    ds = resolve_ds(params, logical_date)
    model_version = str(params.get("model_version") or config.model.version)
    if not re.fullmatch(MODEL_VERSION, model_version):
        raise RunParameterError(
            f"model_version={model_version!r} may only hold letters, digits, '.', '_' and '-'"
        )
    shard_rows = params.get("shard_rows", config.sharding.target_rows)
    if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
        raise RunParameterError(f"shard_rows={shard_rows!r} must be a positive integer")
    reprocess = str(params.get("reprocess") or "missing")
    if reprocess not in REPROCESS_MODES:
        raise RunParameterError(f"reprocess={reprocess!r}: use one of {list(REPROCESS_MODES)}")
    return RunParameters(
        ds=ds,
        model_version=model_version,
        shard_rows=shard_rows,
        reprocess=reprocess,
        dry_run=bool(params.get("dry_run", False)),
    )


def run_parameters_from_context(config: PipelineConfig, context: Any) -> RunParameters:
    return resolve_run_parameters(config, dict(context["params"]), context.get("logical_date"))


def ds_from_context(context: Any) -> str:
    return resolve_ds(dict(context["params"]), context.get("logical_date"))
