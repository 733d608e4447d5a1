"""bench/commit_cadence.py: the worker per step against the default interval, local disk and GCS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import commit_cadence

pytestmark = pytest.mark.slow


def test_cadence_bench_measures_both_cadences_on_both_stores_and_writes_its_ratios(tmp_path: Path, capsys) -> None:
    out = tmp_path / "commit_cadence.json"

    assert commit_cadence.main(["--rows", "3000", "--reps", "1", "--threads", "1", "--out", str(out)]) == 0

    report = json.loads(out.read_text())
    assert report["default_commit_interval_seconds"] == 10.0
    assert [(shard["rows"], shard["checkpoint"]) for shard in report["shards"]] == [(3000, "local"), (3000, "gcs")]
    for shard in report["shards"]:
        per_step, default = shard["per step"]["median_steady_seconds"], shard["default"]["median_steady_seconds"]
        assert per_step > 0 and default > 0
        assert shard["ratio"] == pytest.approx(per_step / default, abs=0.01)
    printed = capsys.readouterr().out
    assert "default / per step rows/s" in printed and " gcs " in printed
