"""Wall-clock guards scale with NIGHTSHARD_HANG_GUARD_FACTOR (default 4x), so a slow machine cannot fail a test."""

from __future__ import annotations

import subprocess

import dag_runner
import pytest
from hang_guard import DEFAULT_FACTOR, hang_guard


@pytest.mark.parametrize("raw, expected", [("", DEFAULT_FACTOR * 300), ("10", 3000), ("0.5", 300), ("junk", DEFAULT_FACTOR * 300)])
def test_hang_guard_scales_generously_and_never_below_the_measured_limit(monkeypatch, raw, expected):
    monkeypatch.setenv("NIGHTSHARD_HANG_GUARD_FACTOR", raw)
    assert hang_guard(300) == expected


def test_dag_runs_and_worker_runs_wait_under_the_scaled_guard(monkeypatch):
    monkeypatch.setenv("NIGHTSHARD_HANG_GUARD_FACTOR", "3")
    seen = []

    def fake_run(command, **kwargs):
        seen.append(kwargs["timeout"])
        return subprocess.CompletedProcess(command, 0, stdout="RUN OF 2026-11-22\nTASK STATES {}\nRUN ID r\n", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    dag_runner.run_dates("nightshard_tabular_risk", [{"ds": "2026-11-22"}], timeout_seconds=240)
    assert seen == [720]
