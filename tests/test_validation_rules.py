"""Validation rules: reconciliation, output checks, drift."""

from __future__ import annotations

import pytest

from nightshard.validation.rules import (
    OutputFooter,
    check_outputs,
    drift_check,
    merge_histograms,
    population_stability_index,
    reconcile,
)


def plan_of(*rows: int) -> dict:
    return {
        "planned_shards": [{"shard_id": f"s{i}", "rows": r} for i, r in enumerate(rows)],
        "input_rows": sum(rows),
    }


def result(shard: str, rows_in: int, rows_out: int, quarantined: int = 0, status: str = "succeeded") -> dict:
    return {"shard_id": shard, "rows_in": rows_in, "rows_out": rows_out, "rows_quarantined": quarantined,
            "status": status}


def failed_names(checks) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_balanced_run_passes_every_check():
    checks = reconcile(plan_of(10, 20), [result("s0", 10, 9, 1), result("s1", 20, 20)], 0.1)
    assert failed_names(checks) == []


def test_missing_and_duplicate_shards_fail():
    checks = reconcile(plan_of(10, 20), [result("s0", 10, 10), result("s0", 10, 10)], 0.1)
    assert "every planned shard has one result" in failed_names(checks)
    detail = checks[0].detail
    assert "missing ['s1']" in detail and "duplicated ['s0']" in detail


def test_rows_lost_inside_a_shard_fail_reconciliation():
    checks = reconcile(plan_of(10), [result("s0", 10, 8, 1)], 0.5)
    assert "rows in = rows out + quarantined, per shard" in failed_names(checks)


def test_too_many_quarantined_rows_fail():
    checks = reconcile(plan_of(100), [result("s0", 100, 90, 10)], 0.05)
    assert failed_names(checks) == ["quarantined share within limit"]


def test_output_checks_catch_row_mismatch_nulls_and_wrong_id_type():
    results = [result("s0", 10, 10)]
    footers = {"s0": OutputFooter(rows=9, columns={"id": "string", "score": "float"}, null_counts={"score": 2})}
    checks = check_outputs(results, footers, id_column="id", input_id_type="int64")
    assert failed_names(checks) == [
        "output files hold the rows their results report",
        "id column first, with the input's type",
        "no null values in the output",
    ]


def test_psi_is_zero_for_identical_and_large_for_shifted_distributions():
    assert population_stability_index([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    assert population_stability_index([100, 0, 0], [0, 0, 100]) > 1.0


def test_drift_fails_only_above_the_configured_limit():
    previous = {"edges": [0, 0.5, 1], "counts": [90, 10]}
    current = {"edges": [0, 0.5, 1], "counts": [10, 90]}
    check, psi = drift_check(current, previous, previous_label="ds=x", warn_above=0.1, fail_above=None)
    assert not check.passed and not check.blocks_publish and psi > 0.1
    check, _ = drift_check(current, previous, previous_label="ds=x", warn_above=0.1, fail_above=0.5)
    assert check.blocks_publish


def test_histograms_merge_by_bins_and_refuse_mixed_bins():
    merged = merge_histograms([{"edges": [0, 1], "counts": [2]}, {"edges": [0, 1], "counts": [3]}, None])
    assert merged == {"edges": [0, 1], "counts": [5]}
    assert merge_histograms([{"edges": [0, 1], "counts": [2]}, {"edges": [0, 2], "counts": [3]}]) is None
