"""Run-level Prometheus metrics: one push per published run to the Pushgateway the workers use.

The workers push per shard (job `nightshard_worker`, grouping pipeline/run_id/shard); this module
pushes the run as a whole (job `nightshard_run`, grouping pipeline/ds) so a rerun of a date replaces
its own series. `runtime.pushgateway_url: null` disables both pushes. The dashboard in
`dashboards/nightshard.json` is built on exactly the names in `EXPORTED_METRIC_NAMES`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from nightshard.handoffs import CostReport, PlanDocument, ShardResultDocument

log = logging.getLogger(__name__)

PUSH_JOB = "nightshard_run"
PUSH_TIMEOUT_SECONDS = 10  # a slow gateway must not hold a published run's task slot for long

RUN_DURATION = "nightshard_run_duration_seconds"
RUN_ROWS = "nightshard_run_rows"  # a counter: exposed as nightshard_run_rows_total{outcome}
RUN_COST = "nightshard_run_cost_dollars"
RUN_ACCELERATOR_HOURS = "nightshard_run_accelerator_hours"
RUN_QUEUE_WAIT = "nightshard_run_queue_wait_seconds"
RUN_LAST_SUCCESS = "nightshard_run_last_success_timestamp_seconds"

RUN_METRIC_NAMES = (
    RUN_DURATION,
    f"{RUN_ROWS}_total",
    RUN_COST,
    RUN_ACCELERATOR_HOURS,
    RUN_QUEUE_WAIT,
    RUN_LAST_SUCCESS,
)

# What the worker exports (job nightshard_worker); listed here so the dashboard test knows them.
WORKER_METRIC_NAMES = (
    "nightshard_worker_rows_total",
    "nightshard_worker_batches_total",
    "nightshard_worker_batch_seconds",  # histogram: _bucket, _sum, _count
    "nightshard_worker_stage_seconds_total",
    "nightshard_worker_gpu_memory_bytes",
    "nightshard_worker_gpu_utilization_ratio",
    "nightshard_worker_peak_rss_bytes",
    "nightshard_worker_tokens_total",  # llm handler only, by kind: input, output
)

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metric_names() -> set[str]:
    """Every series name a PromQL expression may use: run metrics, worker metrics, histogram parts."""
    names = set(RUN_METRIC_NAMES) | set(WORKER_METRIC_NAMES)
    names |= {f"nightshard_worker_batch_seconds{suffix}" for suffix in HISTOGRAM_SUFFIXES}
    return names


def run_summary(
    plan: PlanDocument,
    results: Sequence[ShardResultDocument],
    cost: CostReport,
    *,
    finished_at: dt.datetime,
) -> dict[str, Any]:
    """The numbers a run is judged by. Duration runs from plan (the partition was ready) to publish;
    the wait for the upstream partition is not the pipeline's time. Without `planned_at` in the plan,
    from the first shard's start."""
    starts = [_parse_time(r["started_at"]) for r in results if r.get("started_at")]
    if plan.get("planned_at"):
        started = _parse_time(plan["planned_at"])
    else:
        started = min(starts) if starts else finished_at
    return {
        "pipeline": plan["pipeline"],
        "ds": plan["ds"],
        "model_version": plan["model_version"],
        "duration_seconds": max(0.0, (finished_at - started).total_seconds()),
        "rows_scored": sum(r["rows_out"] for r in results),
        "rows_quarantined": sum(r["rows_quarantined"] for r in results),
        "cost_dollars": float(cost.get("total_cost", 0.0)),
        "currency": cost.get("currency", "USD"),
        "accelerator": cost.get("accelerator", ""),
        "accelerator_hours": float(cost.get("accelerator_hours", 0.0)),
        "queue_wait_seconds": float(cost.get("queue_wait_seconds", 0.0)),
        "finished_at_seconds": finished_at.timestamp(),
    }


def build_registry(summary: dict[str, Any]) -> Any:
    """A fresh CollectorRegistry holding the run's metrics (labels beyond the grouping key only)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    version = {"model_version": summary["model_version"]}
    Gauge(RUN_DURATION, "Seconds from plan (partition ready) to publish.", list(version),
          registry=registry).labels(**version).set(summary["duration_seconds"])
    rows = Counter(RUN_ROWS, "Rows of the run by outcome: scored (published) or quarantined.",
                   ["model_version", "outcome"], registry=registry)
    rows.labels(outcome="scored", **version).inc(summary["rows_scored"])
    rows.labels(outcome="quarantined", **version).inc(summary["rows_quarantined"])
    # Named in dollars: the shipped price table is USD; a table in another currency says so in its label.
    Gauge(RUN_COST, "Cost of the run's accelerator time (price table currency, USD by default).",
          ["model_version", "currency"], registry=registry).labels(
        currency=summary["currency"], **version).set(summary["cost_dollars"])
    Gauge(RUN_ACCELERATOR_HOURS, "Accelerator-hours the run's workers held (wall seconds x accelerators).",
          ["model_version", "accelerator"], registry=registry).labels(
        accelerator=summary["accelerator"], **version).set(summary["accelerator_hours"])
    Gauge(RUN_QUEUE_WAIT, "Seconds the run's shards waited for capacity (Kueue/DWS), summed; not billed.",
          list(version), registry=registry).labels(**version).set(summary["queue_wait_seconds"])
    Gauge(RUN_LAST_SUCCESS, "Unix time of the run's publish; alert when now minus this exceeds a day.",
          list(version), registry=registry).labels(**version).set(summary["finished_at_seconds"])
    return registry


def grouping_key(summary: dict[str, Any]) -> dict[str, str]:
    return {"pipeline": summary["pipeline"], "ds": summary["ds"]}


def push_run_metrics(summary: dict[str, Any], gateway_url: str | None) -> bool:
    """Push to the gateway when one is configured; a gateway that is down is logged, never raised."""
    if not gateway_url:
        log.info("runtime.pushgateway_url is not set: run metrics not pushed")
        return False
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(gateway_url, job=PUSH_JOB, registry=build_registry(summary),
                        grouping_key=grouping_key(summary), timeout=PUSH_TIMEOUT_SECONDS)
    except OSError as error:  # URLError and socket errors; the run is already published
        log.warning("could not push run metrics to %s: %s. The run is published; dashboards miss this run",
                    gateway_url, error)
        return False
    log.info("pushed run metrics to %s (job %s, %s)", gateway_url, PUSH_JOB, grouping_key(summary))
    return True


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
