"""The benchmark command runs end to end at tiny sizes and records every variant and ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hang_guard import hang_guard

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# A hang guard, not a speed check: speed is what bench/ measures, and this shared machine's speed
# varies 2.5x within a day.
QUICK_TIMEOUT_SECONDS = 300


def test_quick_bench_writes_results_with_all_variants_and_ratios(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--workloads", "text", "--text-rows", "32",
         "--out", str(tmp_path)],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=hang_guard(QUICK_TIMEOUT_SECONDS),
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    [text_result] = tmp_path.glob("text-*.json")  # text-cpu.json here, text-cuda.json on a GPU machine
    report = json.loads(text_result.read_text())
    device = report["machine"]["device"]
    assert set(report["medians"]) == {"ceiling", "worker", "naive", "ray"}, report["not_measured"]
    assert all(medians["steady"] > 0 for medians in report["medians"].values())
    ratios = {target["name"]: target["ratio"] for target in report["targets"]}
    assert len(ratios) >= 3 and all(value is not None and value > 0 for value in ratios.values()), ratios
    assert (tmp_path / f"scaling-{device}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| text | worker |" in completed.stdout
