"""The pre-launch estimate plan logs: pure table tests, and the history read from published manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nightshard.config.pipeline_config import load_pipeline_config
from nightshard.reporting.run_estimate import estimate_run, render_estimate, throughput_history

REPO_PIPELINES = Path(__file__).resolve().parents[2] / "dags" / "pipelines"


@pytest.mark.parametrize(
    ("history", "shard_rows", "price", "accelerators", "expected"),
    [
        pytest.param([], [1000], 1.0, 1, None, id="no history: first run"),
        pytest.param([{"rows": 0, "worker_seconds": 0}], [1000], 1.0, 1, None, id="empty earlier run is ignored"),
        pytest.param([{"rows": 3600, "worker_seconds": 36}], [], 1.0, 1, None, id="nothing to score"),
        pytest.param(
            [{"rows": 3600, "worker_seconds": 36}], [1000, 1000, 500], 3.6, 1,
            {"rows_per_second_per_worker": 100, "worker_seconds": 25, "eta_parallel_seconds": 10,
             "eta_serial_seconds": 25, "accelerator_hours": 25 / 3600, "cost": 0.025, "shards": 3},
            id="one earlier run at 100 rows/s",
        ),
        pytest.param(
            [{"rows": 1000, "worker_seconds": 10}, {"rows": 3000, "worker_seconds": 10}], [4000], 1.0, 2,
            {"rows_per_second_per_worker": 200, "worker_seconds": 20, "eta_parallel_seconds": 20,
             "accelerator_hours": 40 / 3600, "runs_used": 2},
            id="throughput pools rows over seconds; two GPUs per pod double the hours",
        ),
    ],
)
def test_estimate_from_earlier_throughput(history, shard_rows, price, accelerators, expected):
    estimate = estimate_run(history, shard_rows=shard_rows, price_per_accelerator_hour=price,
                            accelerators_per_shard=accelerators)
    if expected is None:
        assert estimate is None
        return
    for key, value in expected.items():
        assert estimate[key] == pytest.approx(value), key


def test_estimate_line_says_first_run_without_history():
    assert "no estimate: first run" in render_estimate(None, shards=4)


def test_estimate_line_names_shards_eta_and_dollars():
    estimate = estimate_run([{"rows": 3600, "worker_seconds": 36}], shard_rows=[360000, 360000],
                            price_per_accelerator_hour=0.71, accelerators_per_shard=1)
    line = render_estimate(estimate, shards=2)
    assert "2 shards" in line and "ETA 1h00m00s with every shard at once" in line
    assert "2h00m00s one at a time" in line and "1.4200 USD" in line


def publish_fake_manifest(home, ds, rows, seconds, *, success=True, version="v1"):
    partition = home / "predictions" / "tabular_risk" / f"model_version={version}" / f"ds={ds}"
    partition.mkdir(parents=True)
    (partition / "_manifest.json").write_text(json.dumps(
        {"ds": ds, "rows": {"input": rows}, "timings": {"worker_seconds": seconds}}))
    if success:
        (partition / "_SUCCESS").write_text("")


def test_history_reads_published_runs_of_the_same_version_newest_first(nightshard_home):
    config = load_pipeline_config(REPO_PIPELINES / "tabular_risk.yaml")
    publish_fake_manifest(nightshard_home, "2026-11-19", 1000, 10)
    publish_fake_manifest(nightshard_home, "2026-11-20", 2000, 10, success=False)  # half-published: skipped
    publish_fake_manifest(nightshard_home, "2026-11-21", 3000, 10)
    publish_fake_manifest(nightshard_home, "2026-11-22", 9999, 1)  # the date being planned: a rerun
    publish_fake_manifest(nightshard_home, "2026-11-21", 5, 5, version="v2")
    history = throughput_history(config, "v1", "2026-11-22")
    assert [(run["ds"], run["rows"]) for run in history] == [("2026-11-21", 3000), ("2026-11-19", 1000)]
    assert throughput_history(config, "v9", "2026-11-22") == []


def test_rerun_of_the_only_published_date_learns_from_its_previous_run(nightshard_home, caplog):
    import logging

    from nightshard.reporting.run_estimate import log_estimate
    from nightshard.validation.rules import drift_check
    from nightshard.validation.validate_task import previous_published_manifest, previous_run_label

    config = load_pipeline_config(REPO_PIPELINES / "tabular_risk.yaml")
    publish_fake_manifest(nightshard_home, "2026-11-22", 3600, 36)
    with caplog.at_level(logging.INFO, logger="nightshard.reporting.run_estimate"):
        estimate = log_estimate(config, "v1", "2026-11-22", [1800, 1800])
    assert estimate["rows_per_second_per_worker"] == pytest.approx(100)
    assert "estimate from the previous run of this date (ds=2026-11-22)" in caplog.text
    assert "no earlier published run" not in caplog.text

    manifest = previous_published_manifest(config, "v1", "2026-11-22")
    assert manifest["ds"] == "2026-11-22"
    histogram = {"edges": [0.0, 0.5, 1.0], "counts": [10, 10]}
    check, psi = drift_check(histogram, histogram, previous_label=previous_run_label(manifest, "2026-11-22"),
                             warn_above=0.1, fail_above=None)
    assert psi == 0 and "vs the previous run of this date (ds=2026-11-22)" in check.detail
    # an earlier date, when there is one, stays the reference; the report after publish skips its own date
    publish_fake_manifest(nightshard_home, "2026-11-20", 1000, 10)
    assert previous_published_manifest(config, "v1", "2026-11-22")["ds"] == "2026-11-20"
    assert [run["ds"] for run in throughput_history(config, "v1", "2026-11-22")] == ["2026-11-20"]
    assert previous_published_manifest(config, "v1", "2026-11-20", same_date=False) is None


def test_published_table_lists_every_date_folder_and_reads_only_published_manifests(nightshard_home):
    from nightshard.publishing.published import partition_dates, published_manifest

    config = load_pipeline_config(REPO_PIPELINES / "tabular_risk.yaml")
    assert partition_dates(config, "v1") == []
    publish_fake_manifest(nightshard_home, "2026-11-21", 3000, 10)
    publish_fake_manifest(nightshard_home, "2026-11-19", 1000, 10)
    publish_fake_manifest(nightshard_home, "2026-11-20", 2000, 10, success=False)
    table = nightshard_home / "predictions" / "tabular_risk" / "model_version=v1"
    (table / "_staging").mkdir()
    (table / "ds=2026-11-18.txt").write_text("")  # a file, not a partition
    assert partition_dates(config, "v1") == ["2026-11-19", "2026-11-20", "2026-11-21"]
    assert published_manifest(config, "v1", "2026-11-21")["rows"]["input"] == 3000
    assert published_manifest(config, "v1", "2026-11-20") is None
    assert published_manifest(config, "v1", "2026-11-17") is None
