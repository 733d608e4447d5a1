"""Run-level metrics: the names we export, the dashboard built on them, and a real push."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from pathlib import Path

import pytest

from nightshard.reporting.run_metrics import (
    PUSH_JOB,
    RUN_METRIC_NAMES,
    build_registry,
    exported_metric_names,
    push_run_metrics,
    run_summary,
)
from reporting.samples import START, cost_for, plan_for, straggling_run
from reporting.servers import free_port

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "nightshard.json"
PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase", "time",
    "histogram_quantile", "label_values", "by", "without", "on", "ignoring", "and", "or", "unless",
    "group_left", "group_right", "offset",
}


def summary_of_sample_run(**plan_overrides):
    results = straggling_run()
    return run_summary({**plan_for(results), **plan_overrides}, results, cost_for(results),
                       finished_at=START + dt.timedelta(minutes=3))


def exposition(registry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels`, from the text format."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_]+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(4))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_run_summary_measures_from_the_first_shard_when_the_plan_has_no_time():
    summary = summary_of_sample_run()
    assert summary["duration_seconds"] == 180.0
    assert summary["rows_scored"] == 9475 and summary["rows_quarantined"] == 25
    assert summary["queue_wait_seconds"] == 42.0
    assert summary["accelerator_hours"] == pytest.approx(140 / 3600)


def test_run_summary_measures_from_plan_so_the_upstream_wait_does_not_count():
    summary = summary_of_sample_run(planned_at=(START - dt.timedelta(minutes=10)).isoformat())
    assert summary["duration_seconds"] == 780.0


def test_registry_exposes_exactly_the_documented_names_with_prometheus_units():
    text = exposition(build_registry(summary_of_sample_run()))
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    names.discard("nightshard_run_rows_created")  # prometheus_client's creation time of the counter
    assert names == set(RUN_METRIC_NAMES)
    assert sample_value(text, "nightshard_run_rows_total", outcome="scored") == 9475
    assert sample_value(text, "nightshard_run_rows_total", outcome="quarantined") == 25
    assert sample_value(text, "nightshard_run_cost_dollars", currency="USD") == pytest.approx(140 / 3600 * 0.71)


def test_dashboard_uses_only_metric_names_we_export():
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions.append(dashboard["templating"]["list"][1]["definition"])
    used = set()
    for expression in expressions:
        without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expression)
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels):
            if word.startswith("nightshard_"):
                used.add(word)
            else:
                assert word in PROMQL_FUNCTIONS_AND_KEYWORDS | {"le", "pipeline", "ds", "shard", "stage",
                                                                 "outcome", "currency", "accelerator"}, word
    assert used, "the dashboard queries no nightshard metric"
    assert used <= exported_metric_names(), used - exported_metric_names()
    assert set(RUN_METRIC_NAMES) <= used, set(RUN_METRIC_NAMES) - used  # every run metric has a panel
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_push_without_a_gateway_is_a_no_op():
    assert push_run_metrics(summary_of_sample_run(), None) is False


def test_push_to_a_gateway_that_is_down_is_logged_not_raised(caplog):
    assert push_run_metrics(summary_of_sample_run(), f"http://127.0.0.1:{free_port()}") is False
    assert "could not push run metrics" in caplog.text


@pytest.mark.slow
def test_run_metrics_land_in_a_real_pushgateway_under_the_run_grouping_key(pushgateway):
    summary = summary_of_sample_run()
    assert push_run_metrics(summary, pushgateway) is True
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    grouping = {"job": PUSH_JOB, "pipeline": "tabular_risk", "ds": "2026-11-22"}
    assert sample_value(text, "nightshard_run_duration_seconds", **grouping) == 180.0
    assert sample_value(text, "nightshard_run_rows_total", outcome="quarantined", **grouping) == 25
    assert sample_value(text, "nightshard_run_queue_wait_seconds", **grouping) == 42.0
    assert sample_value(text, "nightshard_run_last_success_timestamp_seconds", **grouping) == pytest.approx(
        summary["finished_at_seconds"])

    rerun = dict(summary, duration_seconds=99.0)  # a rerun of the date replaces the date's series
    assert push_run_metrics(rerun, pushgateway) is True
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert sample_value(text, "nightshard_run_duration_seconds", **grouping) == 99.0
