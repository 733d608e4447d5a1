"""The scale benchmarks run end to end at tiny sizes (the real sizes run by hand: bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

HANG_GUARD_SECONDS = 300  # not a speed check


def run_bench(module: str, *arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    completed = subprocess.run([sys.executable, "-m", module, *arguments], cwd=REPO, env=environment,
                               capture_output=True, text=True, timeout=HANG_GUARD_SECONDS)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def test_plan_scale_plans_real_and_synthetic_partitions_within_max_map_length(tmp_path: Path) -> None:
    output = tmp_path / "plan_scale.json"
    run_bench("bench.plan_scale", "--files", "3,20", "--real-up-to", "3", "--output", str(output))
    real, synthetic = json.loads(output.read_text())["runs"]
    assert (real["store"], real["files"], real["rows"], real["shards"]) == ("local", 3, 300_000, 3)
    assert (synthetic["store"], synthetic["files"], synthetic["shards"]) == ("synthetic footers", 20, 20)
    assert real["peak_rss_bytes"] > 0 and set(real["phase_seconds"]) == {"footers", "specs"}


def test_plan_scale_on_gcs_measures_raw_fetch_plan_and_raw_spec_puts_against_one_emulator(tmp_path: Path) -> None:
    output = tmp_path / "plan_scale.json"
    run_bench("bench.plan_scale", "--files", "", "--gcs", "2,3", "--gcs-variants", "stock", "--gcs-reps", "1",
              "--output", str(output))
    report = json.loads(output.read_text())
    two_files = report["runs"][2]  # each size's spec puts are that size's specs, not an earlier size's
    assert (two_files["store"], two_files["files"], two_files["requests"]["POST upload"]) == ("gcs raw spec puts", 2, 2)
    raw, planned, puts = report["runs"][3:]
    assert (raw["store"], planned["store"], puts["store"]) == ("gcs raw footer fetch", "gcs", "gcs raw spec puts")
    assert raw["requests"]["GET download"] == planned["requests"]["GET download"] == 3
    assert puts["requests"]["POST upload"] == puts["files"] == planned["shards"] == 3
    assert raw["seeded_objects"] == 4  # the files and the marker, seeded on disk, not uploaded
    summary = report["gcs_summary"][1]
    assert summary["plan_over_raw_fetch"] == planned["seconds"] / raw["seconds"]
    assert summary["raw_spec_put_seconds"] == puts["seconds"] and summary["reps"] == 1


def test_triggerer_load_holds_deferred_pods_and_reports_memory_and_lag(tmp_path: Path) -> None:
    output = tmp_path / "triggerer.json"
    run_bench("bench.triggerer_load", "--pods", "3", "--hold", "1", "--poll-interval", "1", "--output", str(output))
    report = json.loads(output.read_text())
    assert report["pods"] == 3 and report["events_ok"] == 3
    assert report["peak_rss_bytes"] >= report["rss_before_bytes"] > 0
    assert set(report["lag_while_held_ms"]) == {"p50", "p99", "max"}


def test_unique_ids_bench_finds_the_planted_duplicates_holding_about_one_bucket(tmp_path: Path) -> None:
    output = tmp_path / "unique_ids.json"
    run_bench("bench.unique_ids", "--shards", "4", "--ids-per-shard", "3000", "--buckets", "6",
              "--workdir", str(tmp_path), "--output", str(output))
    report = json.loads(output.read_text())
    assert not report["check_passed"] and report["duplicates_reported"] == report["duplicates_planted"] == 3
    assert "part-00001.parquet row group 0 row 1" in report["check_detail"]  # the duplicate inside a row group
    assert report["check_bucket_reads"] == 4 * 6
    assert report["check_most_ids_held"] < report["ids"] / 3  # about a sixth: one bucket, never the column
    assert list(tmp_path.iterdir()) == [output]  # inputs and indexes are deleted
