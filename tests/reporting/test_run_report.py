"""The run report: the numbers behind its plots, and the page as headless Chromium renders it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hang_guard import hang_guard

from nightshard.reporting.report_page import (
    CHART_NAMES,
    cost_by_stage,
    render_run_report,
    stragglers,
    throughput_points,
)
from nightshard.validation.rules import population_stability_index
from reporting.samples import EDGES, cost_for, plan_for, shard_result, straggling_run, validation_with_drift

REPO = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOT = REPO / "docs" / "run-report.png"
PREVIOUS_COUNTS = [300, 500, 800, 1000, 1200, 1200, 1000, 800, 500, 300]
CURRENT_COUNTS = [200, 400, 700, 1000, 1300, 1300, 1100, 900, 500, 100]
CHROMIUM_SECONDS = hang_guard(90)


def sample_page() -> str:
    results = straggling_run()
    psi = population_stability_index(PREVIOUS_COUNTS, CURRENT_COUNTS)
    return render_run_report(
        plan=plan_for(results), results=results, validation=validation_with_drift(CURRENT_COUNTS, psi),
        cost=cost_for(results),
        published={"output_partition": "/var/predictions/tabular_risk/model_version=v1/ds=2026-11-22",
                   "code_version": "0.1.0+0123456789ab"},
        previous_manifest={"ds": "2026-11-21", "histogram": {"edges": EDGES, "counts": PREVIOUS_COUNTS}},
    )


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param([20, 20, 20, 60, 20], ["00003-abcd0003"], id="one shard three times the median"),
        pytest.param([20, 22, 25, 29], [], id="jitter under 1.5x is not a straggler"),
        pytest.param([10, 100], [], id="two shards have no meaningful median"),
    ],
)
def test_stragglers_are_shards_well_above_the_median(seconds, expected):
    results = [shard_result(index, seconds=value) for index, value in enumerate(seconds)]
    assert stragglers(results) == expected


def test_throughput_sums_the_rates_of_the_shards_running_at_each_moment():
    # shards 0+1 at 100 rows/s each from 0 s; 2+3 from 20 s (3 runs 60 s: 33 rows/s); 4 at 75 rows/s from 40 s
    points = throughput_points(straggling_run())
    assert [round(x) for x, _ in points] == [0, 20, 40, 60, 80]
    assert [round(y, 1) for _, y in points] == [200.0, 133.3, 108.3, 33.3, 0.0]


def test_cost_by_stage_adds_up_to_the_run_cost():
    results = straggling_run()
    cost = cost_for(results)
    by_stage = dict(cost_by_stage(results, cost))
    assert set(by_stage) == {"read", "preprocess", "predict", "write", "startup and other"}
    assert sum(by_stage.values()) == pytest.approx(cost["total_cost"])
    assert by_stage["predict"] == pytest.approx(cost["total_cost"] * 0.5)


def test_cost_by_stage_bills_earlier_attempts_and_the_page_shows_attempts_per_shard():
    from nightshard.reporting.cost import run_cost

    results = straggling_run()
    results[1].update(attempts=3, earlier_attempts_seconds=results[1]["wall_seconds"])
    cost = run_cost(results, accelerator="nvidia-l4", provisioning="spot", accelerators_per_shard=1,
                    table={"prices": {"nvidia-l4": {"spot": 1.0}}})
    by_stage = dict(cost_by_stage(results, cost))
    assert sum(by_stage.values()) == pytest.approx(cost["total_cost"])
    assert by_stage["earlier attempts"] == pytest.approx(results[1]["wall_seconds"] / 3600)
    page = render_run_report(plan=plan_for(results), results=results, validation={"checks": []}, cost=cost,
                             published={}, previous_manifest=None)
    assert "<th>attempts</th>" in page and f"<td>{results[1]['rows_in'] / results[1]['wall_seconds']:,.0f}</td><td>3</td>" in page


def test_page_is_self_contained_and_names_psi_stragglers_and_cost():
    page = sample_page()
    assert "<script" not in page and "src=" not in page and "href=" not in page
    for name in CHART_NAMES:
        assert f'data-chart="{name}"' in page
    assert "stragglers (over 1.5x the median shard time): 00003-abcd0003" in page
    assert "PSI 0.0439 vs ds=2026-11-21" in page
    assert 'class="mark previous"' in page  # the previous run's distribution is overlaid


def test_page_without_an_earlier_run_says_so_instead_of_a_psi():
    results = straggling_run()
    validation = {"checks": [], "histogram": {"edges": EDGES, "counts": CURRENT_COUNTS}, "drift_psi": None,
                  "previous_ds": None}
    page = render_run_report(plan=plan_for(results), results=results, validation=validation,
                             cost=cost_for(results), published={}, previous_manifest=None)
    assert "n/a (no earlier run)" in page and 'class="mark previous"' not in page


def test_llm_run_report_speaks_in_tokens():
    results = straggling_run()
    for result in results:
        result.update(input_tokens=50_000, output_tokens=5_000)
    cost = cost_for(results)
    assert "input_tokens" in cost  # run_cost priced the tokens
    page = render_run_report(plan=plan_for(results), results=results, validation=validation_with_drift(
        CURRENT_COUNTS, 0.01), cost=cost, published={}, previous_manifest=None)
    assert f"{cost['input_tokens']:,} / {cost['output_tokens']:,}" in page
    assert "tokens/s" in page and "per million input tokens" in page and "per million output tokens" in page
    assert "per million input tokens" not in sample_page()


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not binary:
        pytest.skip("chromium missing: run bash scripts/install-browser.sh")
    return binary


def run_chromium(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={cwd / 'profile'}", *arguments],
        capture_output=True, text=True, timeout=CHROMIUM_SECONDS, cwd=cwd, check=True,
    )


@pytest.mark.slow
def test_headless_chromium_renders_every_plot(tmp_path):
    page = tmp_path / "run_report.html"
    page.write_text(sample_page())
    dom = run_chromium("--dump-dom", page.as_uri(), cwd=tmp_path).stdout
    charts = re.findall(r'<svg[^>]*data-chart="([a-z_]+)"', dom)
    assert sorted(charts) == sorted(CHART_NAMES)
    for name in CHART_NAMES:  # each plot drew marks, not only its frame
        chart = dom.split(f'data-chart="{name}"', 1)[1].split("</svg>", 1)[0]
        assert 'class="mark' in chart, name
    assert 'fill="#c0392b"' in dom.split('data-chart="shard_duration"', 1)[1].split("</svg>", 1)[0]

    screenshot = tmp_path / "run-report.png"
    run_chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri(), cwd=tmp_path)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    if os.environ.get("NIGHTSHARD_UPDATE_DOCS") == "1":
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


def test_rows_cut_to_the_models_context_are_counted_in_the_page_and_the_manifest():
    from nightshard.publishing.manifest import build_manifest

    results = straggling_run()
    for index, result in enumerate(results):
        result["rows_truncated"] = index  # 0+1+2+3+4
    plan = {**plan_for(results), "input_partition": "/in/ds=2026-11-22", "input_files": []}
    page = render_run_report(plan=plan, results=results, validation={"checks": [], "histogram": None},
                             cost=cost_for(results), published={}, previous_manifest=None)
    assert re.search(r"rows truncated to the model&#x27;s context<b>10</b>", page), page
    manifest = build_manifest(plan=plan, results=results, validation={}, model={}, files=[], quarantine_files=[],
                              cost={})
    assert manifest["rows"]["truncated"] == 10
    for result in results:  # a handler that never cuts (tabular): no count, not a zero
        result["rows_truncated"] = None
    assert "truncated" not in build_manifest(plan=plan, results=results, validation={}, model={}, files=[],
                                             quarantine_files=[], cost={})["rows"]
    assert "truncated" not in render_run_report(plan=plan, results=results, validation={"checks": []},
                                                cost=cost_for(results), published={}, previous_manifest=None)
