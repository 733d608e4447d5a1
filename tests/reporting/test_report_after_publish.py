"""What happens after publish, on hand-made results: run_report.html in the reports folder, the run
metrics in a real Pushgateway, and a run that stays published when the gateway is down."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from nightshard.config.pipeline_config import load_pipeline_config
from nightshard.reporting.report_page import CHART_NAMES
from nightshard.reporting.report_task import report_run
from nightshard.validation.rules import population_stability_index
from nightshard.validation.validate_task import previous_published_manifest  # noqa: F401 - configures Airflow logging first
from reporting.samples import EDGES, cost_for, plan_for, straggling_run, validation_with_drift
from reporting.servers import free_port

REPO = Path(__file__).resolve().parents[2]
PREVIOUS_COUNTS = [300, 500, 800, 1000, 1200, 1200, 1000, 800, 500, 300]


def config_with_gateway(tmp_path: Path, gateway: str | None):
    document = yaml.safe_load((REPO / "dags" / "pipelines" / "tabular_risk.yaml").read_text())
    document.setdefault("runtime", {})["pushgateway_url"] = gateway
    path = tmp_path / "tabular_risk.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_pipeline_config(path)


def publish_previous_run(home: Path) -> None:
    partition = home / "predictions" / "tabular_risk" / "model_version=v1" / "ds=2026-11-21"
    partition.mkdir(parents=True)
    (partition / "_manifest.json").write_text(json.dumps(
        {"ds": "2026-11-21", "histogram": {"edges": EDGES, "counts": PREVIOUS_COUNTS}}))
    (partition / "_SUCCESS").write_text("")


def report_sample_run(config):
    results = straggling_run()
    current = [200, 400, 700, 1000, 1300, 1300, 1100, 900, 500, 100]
    validation = validation_with_drift(current, population_stability_index(PREVIOUS_COUNTS, current))
    published = {"output_partition": "p", "manifest_uri": "p/_manifest.json", "code_version": "test"}
    return report_run(config, plan_for(results), results, validation, cost_for(results), published)


@pytest.mark.slow
def test_report_lands_in_the_reports_folder_and_metrics_in_the_gateway(
        nightshard_home, tmp_path, pushgateway, caplog):
    publish_previous_run(nightshard_home)
    caplog.set_level("INFO", logger="nightshard")
    receipt = report_sample_run(config_with_gateway(tmp_path, pushgateway))

    expected = (nightshard_home / "predictions" / "tabular_risk" / "_reports" / "model_version=v1"
                / "ds=2026-11-22" / "run_report.html")
    assert receipt["run_report_uri"] == str(expected)
    assert f"run report: {expected}" in caplog.text  # on-call finds the page from the task log
    page = expected.read_text()
    assert all(f'data-chart="{name}"' in page for name in CHART_NAMES)
    assert 'class="mark previous"' in page  # the previous published run was found and overlaid

    assert receipt["metrics_pushed"] is True
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'nightshard_run_cost_dollars{' in text and 'job="nightshard_run"' in text


def test_gateway_down_leaves_the_run_published_with_a_warning(nightshard_home, tmp_path, caplog):
    receipt = report_sample_run(config_with_gateway(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert receipt["metrics_pushed"] is False and receipt["run_report_uri"]
    assert "could not push run metrics" in caplog.text
