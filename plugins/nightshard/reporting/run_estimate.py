"""The pre-launch estimate `plan` logs: shards, ETA and dollars from earlier runs' throughput.

Throughput comes from the published manifests of the same pipeline and model version
(`rows.input` over `timings.worker_seconds`); the estimate itself is a pure function.
"""

from __future__ import annotations

import logging
from typing import Any

from nightshard.config.pipeline_config import PipelineConfig
from nightshard.publishing.published import partition_dates, published_manifest
from nightshard.reporting.cost import pricing_for

log = logging.getLogger(__name__)

HISTORY_RUNS = 7  # a week of nightly runs: recent enough to follow hardware changes, enough to smooth noise


def estimate_run(
    history: list[dict[str, float]],
    *,
    shard_rows: list[int],
    price_per_accelerator_hour: float,
    accelerators_per_shard: int,
) -> dict[str, Any] | None:
    """None without usable history; else rows/s per worker, ETA (all shards at once / one at a time), cost.

    `history` holds {"rows": ..., "worker_seconds": ...} per earlier run.
    """
    usable = [run for run in history if run.get("rows", 0) > 0 and run.get("worker_seconds", 0) > 0]
    if not usable or not shard_rows:
        return None
    rows_per_second = sum(run["rows"] for run in usable) / sum(run["worker_seconds"] for run in usable)
    worker_seconds = sum(shard_rows) / rows_per_second
    accelerator_hours = worker_seconds * accelerators_per_shard / 3600
    return {
        "runs_used": len(usable),
        "shards": len(shard_rows),
        "rows": sum(shard_rows),
        "rows_per_second_per_worker": rows_per_second,
        "worker_seconds": worker_seconds,
        "eta_parallel_seconds": max(shard_rows) / rows_per_second,
        "eta_serial_seconds": worker_seconds,
        "accelerator_hours": accelerator_hours,
        "cost": accelerator_hours * price_per_accelerator_hour,
    }


def render_estimate(estimate: dict[str, Any] | None, *, shards: int, currency: str = "USD") -> str:
    if estimate is None:
        return f"estimate: {shards} shards; no estimate: first run (no earlier published run of this model version)"
    source = (f"the previous run of this date (ds={estimate['rerun_of']})" if estimate.get("rerun_of")
              else f"{estimate['runs_used']} earlier run(s)")
    return (
        f"estimate from {source} at {estimate['rows_per_second_per_worker']:.0f} "
        f"rows/s per worker: {estimate['shards']} shards, {estimate['rows']} rows, ETA "
        f"{_duration(estimate['eta_parallel_seconds'])} with every shard at once, "
        f"{_duration(estimate['eta_serial_seconds'])} one at a time; about {estimate['cost']:.4f} {currency} "
        f"for {estimate['accelerator_hours']:.4f} accelerator-hours"
    )


def throughput_history(config: PipelineConfig, model_version: str, ds: str, *, limit: int = HISTORY_RUNS
                       ) -> list[dict[str, float]]:
    """rows and worker_seconds of the latest published runs of this version on other dates than `ds`; when
    there are none, of `ds`'s own published run (a rerun)."""
    dates = partition_dates(config, model_version)[::-1]
    history: list[dict[str, Any]] = []
    # Other dates first; a rerun whose date is the only one published learns from that date's run.
    for other in [*(d for d in dates if d != ds), *(d for d in dates if d == ds)]:
        if other == ds and history:
            break
        manifest = published_manifest(config, model_version, other)
        if manifest is None:
            continue
        history.append({"ds": other, "rows": manifest["rows"]["input"],
                        "worker_seconds": manifest["timings"]["worker_seconds"]})
        if len(history) == limit:
            break
    return history


def log_estimate(config: PipelineConfig, model_version: str, ds: str, shard_rows: list[int]) -> dict[str, Any] | None:
    """Read the history, estimate, log one line; an estimate that cannot be made never fails the plan."""
    if not shard_rows:
        log.info("estimate: every shard was committed earlier; nothing to score")
        return None
    try:
        pricing = pricing_for(config)
        history = throughput_history(config, model_version, ds)
        estimate = estimate_run(history, shard_rows=shard_rows,
                                price_per_accelerator_hour=pricing.price_per_accelerator_hour,
                                accelerators_per_shard=pricing.accelerators_per_shard)
        if estimate and [run["ds"] for run in history] == [ds]:
            estimate["rerun_of"] = ds
    except Exception as error:  # noqa: BLE001 - the estimate is advice; planning goes on without it
        log.warning("no estimate: %s", error)
        return None
    log.info("%s", render_estimate(estimate, shards=len(shard_rows), currency=pricing.currency))
    return estimate


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
