"""The run report: one self-contained HTML page per published run, for on-call and finance.

Plots (inline SVG, see `report_charts`): duration per shard with stragglers in red, rows per shard,
throughput over time, queue wait against run time, cost by stage, and the prediction distribution
against the previous published run with its PSI. `render_run_report` is pure; `write_run_report`
writes `<reports folder>/run_report.html`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from nightshard.handoffs import (
    CostReport,
    PlanDocument,
    PublishedPartition,
    ShardResultDocument,
    ValidationReport,
)
from nightshard.reporting import charts as report_charts

TEMPLATE = Path(__file__).with_name("templates") / "run_report.html"
REPORT_FILE = "run_report.html"

# A shard is a straggler when it ran this much longer than the median shard: 1.5x is where one slow
# shard starts to hold the whole run back noticeably, yet ordinary row-count jitter stays below it.
STRAGGLER_FACTOR = 1.5

CHART_NAMES = (
    "shard_duration",
    "shard_rows",
    "throughput",
    "queue_wait",
    "cost_breakdown",
    "prediction_distribution",
)


def stragglers(results: Sequence[ShardResultDocument], factor: float = STRAGGLER_FACTOR) -> list[str]:
    """Shards whose wall time exceeds `factor` times the median; none with fewer than three shards."""
    if len(results) < 3:
        return []
    median = statistics.median(r["wall_seconds"] for r in results)
    return sorted(r["shard_id"] for r in results if median > 0 and r["wall_seconds"] > factor * median)


def throughput_points(results: Sequence[ShardResultDocument]) -> list[tuple[float, float]]:
    """(seconds since the first shard started, rows/s of all running shards) at every start and finish."""
    spans = []
    for result in results:
        if not result.get("started_at") or not result.get("finished_at"):
            continue
        start, finish = _time(result["started_at"]), _time(result["finished_at"])
        seconds = (finish - start).total_seconds() or result.get("wall_seconds") or 0.0
        if seconds > 0:
            spans.append((start, finish, result["rows_in"] / seconds))
    if not spans:
        return []
    origin = min(start for start, _, _ in spans)
    moments = sorted({moment for start, finish, _ in spans for moment in (start, finish)})
    return [
        ((moment - origin).total_seconds(), sum(rate for start, finish, rate in spans if start <= moment < finish))
        for moment in moments
    ]


def cost_by_stage(results: Sequence[ShardResultDocument], cost: CostReport) -> list[tuple[str, float]]:
    """Each shard's cost split over its stages by their share of its billed time (its last attempt's wall
    time plus its earlier attempts'); the rest of the last attempt is overhead."""
    shard_cost = {shard["shard_id"]: shard["cost"] for shard in cost.get("shards", [])}
    totals: dict[str, float] = {}
    for result in results:
        wall = result["wall_seconds"]
        earlier = result.get("earlier_attempts_seconds") or 0.0
        billed = wall + earlier
        price = shard_cost.get(result["shard_id"], 0.0)
        if billed <= 0:
            continue
        staged = 0.0
        for stage, seconds in (result.get("stage_seconds") or {}).items():
            totals[stage] = totals.get(stage, 0.0) + price * seconds / billed
            staged += seconds
        totals["startup and other"] = totals.get("startup and other", 0.0) + price * max(wall - staged, 0.0) / billed
        if earlier:
            totals["earlier attempts"] = totals.get("earlier attempts", 0.0) + price * earlier / billed
    return list(totals.items())


def render_run_report(
    *,
    plan: PlanDocument,
    results: Sequence[ShardResultDocument],
    validation: ValidationReport,
    cost: CostReport,
    published: PublishedPartition,
    previous_manifest: dict[str, Any] | None,
    generated_at: dt.datetime | None = None,
) -> str:
    """The whole page as one HTML string: no scripts, no external files."""
    results = sorted(results, key=lambda r: r["shard_id"])
    labels = [r["shard_id"] for r in results]
    slow = stragglers(results)
    currency = cost.get("currency", "USD")
    queue = [float(r.get("queue_wait_seconds") or _queue_of(cost, r["shard_id"])) for r in results]
    charts = [
        report_charts.bar_chart("shard_duration", "Duration per shard (stragglers in red)", labels,
                                [r["wall_seconds"] for r in results], unit="seconds", highlight=set(slow)),
        report_charts.bar_chart("shard_rows", "Rows per shard", labels, [r["rows_in"] for r in results],
                                unit="rows"),
        report_charts.step_line_chart("throughput", "Throughput over time (all shards)",
                                      throughput_points(results), x_unit="seconds since the first shard started",
                                      y_unit="rows/s"),
        report_charts.stacked_bar_chart("queue_wait", "Queue wait against run time", labels,
                                        [("queue wait", queue, report_charts.ORANGE),
                                         ("running", [r["wall_seconds"] for r in results], report_charts.BLUE)],
                                        unit="seconds"),
        report_charts.horizontal_bars("cost_breakdown", f"Cost by stage ({currency})",
                                      cost_by_stage(results, cost), unit=currency),
        _distribution_chart(validation, previous_manifest, plan["ds"]),
    ]
    rows_in = sum(r["rows_in"] for r in results)
    facts = [
        ("rows in", f"{rows_in:,}"),
        ("rows scored", f"{sum(r['rows_out'] for r in results):,}"),
        ("rows quarantined", f"{sum(r['rows_quarantined'] for r in results):,}"),
        *_truncated_fact(results),
        ("shards", str(len(results))),
        ("cost", f"{cost.get('total_cost', 0.0):.4f} {currency}"),
        ("per million rows", f"{cost.get('cost_per_million_rows', 0.0):.4f} {currency}"),
        (f"{cost.get('accelerator', 'accelerator')}-hours", f"{cost.get('accelerator_hours', 0.0):.4f}"),
        ("drift PSI", _psi_text(validation, plan["ds"])),
    ]
    if "input_tokens" in cost:  # llm handler: tokens are the unit of speed and cost
        facts[6:6] = [
            ("tokens in / out", f"{cost['input_tokens']:,} / {cost['output_tokens']:,}"),
            ("tokens/s", f"{cost['tokens_per_second']:,.1f}"),
            ("per million input tokens", f"{cost['cost_per_million_input_tokens']:.4f} {currency}"),
            ("per million output tokens", f"{cost['cost_per_million_output_tokens']:.4f} {currency}"),
        ]
    values = {
        "pipeline": escape(plan["pipeline"]),
        "ds": escape(plan["ds"]),
        "model_version": escape(plan["model_version"]),
        "run_id": escape(plan["run_id"]),
        "output_uri": escape(published.get("output_partition", "")),
        "code_version": escape(str(published.get("code_version", ""))),
        "facts": "".join(f'<div class="fact">{escape(name)}<b>{escape(value)}</b></div>' for name, value in facts),
        "straggler_line": escape(
            f"stragglers (over {STRAGGLER_FACTOR}x the median shard time): {', '.join(slow)}" if slow
            else "no stragglers: every shard finished within "
                 f"{STRAGGLER_FACTOR}x the median shard time"),
        "charts": "\n".join(f'<div class="chart">{chart}</div>' for chart in charts),
        "shard_table": _shard_table(results, cost, set(slow), queue),
        "checks": _checks(validation),
        "generated_at": escape((generated_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")),
        "price_note": escape(
            f"{cost.get('price_per_accelerator_hour', 0.0)} {currency} per {cost.get('accelerator', '')} hour "
            f"({cost.get('provisioning', '')}), price table of {cost.get('price_recorded', 'unknown date')}"),
    }
    return Template(TEMPLATE.read_text()).substitute(values)


def write_run_report(config: Any, plan: PlanDocument, results: Sequence[ShardResultDocument],
                     validation: ValidationReport, cost: CostReport, published: PublishedPartition) -> str:
    """Render and write the report beside cost_report.json; returns its URI."""
    from nightshard import layout, storage
    from nightshard.validation.validate_task import previous_published_manifest

    previous: dict[str, Any] | None
    if validation.get("previous_histogram") is not None:
        previous = {"ds": validation["previous_ds"], "histogram": validation["previous_histogram"]}
    else:  # published now: this date's partition is this run's own
        previous = previous_published_manifest(config, plan["model_version"], plan["ds"], same_date=False)
    page = render_run_report(plan=plan, results=results, validation=validation, cost=cost,
                             published=published, previous_manifest=previous)
    uri = storage.join(layout.reports_folder(config, plan["model_version"], plan["ds"]), REPORT_FILE)
    storage.write_text_atomic(uri, page)
    return uri


def _distribution_chart(validation: ValidationReport, previous: dict[str, Any] | None, ds: str) -> str:
    histogram = validation.get("histogram")
    title = f"Predictions against the previous run, PSI {_psi_text(validation, ds)}"
    if not histogram:
        return report_charts.horizontal_bars("prediction_distribution",
                                             "Predictions: the handler reports no histogram", [], unit="")
    previous_histogram = (previous or {}).get("histogram")
    comparable = previous_histogram is not None and list(previous_histogram["edges"]) == list(histogram["edges"])
    return report_charts.histogram_overlay(
        "prediction_distribution", title, histogram["edges"], histogram["counts"],
        previous_histogram["counts"] if previous_histogram is not None and comparable else None,
        current_label=f"ds={ds}", previous_label=_previous_label((previous or {}).get("ds", "?"), ds),
    )


def _truncated_fact(results: Sequence[ShardResultDocument]) -> list[tuple[str, str]]:
    counts = [r["rows_truncated"] or 0 for r in results if r.get("rows_truncated") is not None]
    return [("rows truncated to the model's context", f"{sum(counts):,}")] if counts else []


def _psi_text(validation: ValidationReport, ds: str) -> str:
    psi = validation.get("drift_psi")
    if psi is None:
        return "n/a (no earlier run)"
    return f"{psi:.4f} vs {_previous_label(validation.get('previous_ds'), ds)}"


def _previous_label(previous_ds: Any, ds: Any) -> str:
    return "the previous run of this date" if previous_ds == ds else f"ds={previous_ds}"


def _shard_table(results: Sequence[ShardResultDocument], cost: CostReport, slow: set[str], queue: list[float]) -> str:
    shard_cost = {shard["shard_id"]: shard["cost"] for shard in cost.get("shards", [])}
    head = ("<tr><th>shard</th><th>rows in</th><th>scored</th><th>quarantined</th><th>seconds</th>"
            "<th>rows/s</th><th>attempts</th><th>queue wait s</th><th>device</th><th>peak RSS MiB</th><th>cost</th></tr>")
    rows = []
    for result, waited in zip(results, queue):
        wall = result["wall_seconds"]
        rows.append(
            f'<tr class="{"straggler" if result["shard_id"] in slow else ""}">'
            f"<td>{escape(result['shard_id'])}</td><td>{result['rows_in']:,}</td><td>{result['rows_out']:,}</td>"
            f"<td>{result['rows_quarantined']:,}</td><td>{wall:.1f}</td>"
            f"<td>{(result['rows_in'] / wall if wall else 0):,.0f}</td><td>{result.get('attempts', 1)}</td>"
            f"<td>{waited:.1f}</td>"
            f"<td>{escape(result.get('device_name') or result.get('device') or '')}</td>"
            f"<td>{(result.get('peak_rss_bytes') or 0) / 2**20:,.0f}</td>"
            f"<td>{shard_cost.get(result['shard_id'], 0.0):.5f}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _checks(validation: ValidationReport) -> str:
    items = []
    for check in validation.get("checks", []):
        mark = "PASS" if check["passed"] else ("FAIL" if check.get("severity") == "error" else "WARN")
        items.append(f'<li><span class="{mark}">[{mark}]</span> {escape(check["name"])}: '
                     f"{escape(check['detail'])}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _queue_of(cost: CostReport, shard_id: str) -> float:
    for shard in cost.get("shards", []):
        if shard["shard_id"] == shard_id:
            return shard.get("queue_wait_seconds", 0.0)
    return 0.0


def _time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
