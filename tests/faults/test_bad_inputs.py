"""Bad inputs through the real DAG: each fails with an error naming the file, field or row, and
nothing is written (no partition folder, no `_SUCCESS`, no staging); accepted oddities publish exactly once.

One runner process runs every date one after the other (Airflow's start-up is paid once). The first
run publishes a partition with extra, reordered columns and null / NaN / ±inf features; every later
run is a bad input, and the published partition must still match its manifest afterwards.
Unit-level coverage of the same checks: tests/test_planning.py, tests/test_run_parameters.py,
tests/worker/test_tabular_worker.py; the missing column end to end: tests/reporting/test_failure_reporting.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dag_runner import run_dates, task_log
from nightshard_dev import demo

from faults.conftest import ID_COLUMN, RISK_DAG, risk_input, risk_output, risk_staging
from faults.invariant import assert_published_exactly_once, assert_unpublished, input_ids

pytestmark = pytest.mark.slow

ACCEPTED_DS = "2026-11-15"


def odd_but_valid(folder: Path) -> None:
    """Extra column, reversed column order, and null / NaN / +inf / -inf features in a few rows."""
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path)
        balance = table.column("balance").to_numpy(zero_copy_only=False).astype(np.float64)
        balance[[3, 4, 5]] = [np.nan, np.inf, -np.inf]
        mask = np.zeros(len(balance), dtype=bool)
        mask[7] = True
        table = table.set_column(table.schema.get_field_index("balance"), "balance",
                                 pa.array(balance, mask=mask).cast(table.schema.field("balance").type))
        table = table.append_column("upstream_note", pa.array(["extra column"] * table.num_rows))
        table = table.select(list(reversed(table.column_names)))
        pq.write_table(table, path, row_group_size=500)


def wrong_dtype(folder: Path) -> None:
    path = folder / "part-00001.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("balance")
    pq.write_table(table.set_column(index, "balance", pc.cast(table.column("balance"), pa.string())), path)


def truncated(folder: Path) -> None:
    path = folder / "part-00001.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty_partition(folder: Path) -> None:
    for path in folder.glob("*.parquet"):
        path.unlink()


def zero_row_files(folder: Path) -> None:
    for path in folder.glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.slice(0, 0), path)


def duplicate_ids(folder: Path) -> None:
    first = pq.read_table(folder / "part-00000.parquet")
    second = pq.read_table(folder / "part-00001.parquet")
    ids = second.column(ID_COLUMN).to_numpy().copy()
    ids[[10, 11]] = first.column(ID_COLUMN).to_numpy()[[0, 1]]
    pq.write_table(second.set_column(0, ID_COLUMN, pa.array(ids)), folder / "part-00001.parquet",
                   row_group_size=500)


# label: (ds, how the partition is damaged, run conf, failing task, texts its error must hold)
BAD_INPUTS = {
    "wrong_dtype": ("2026-11-10", wrong_dtype, {}, "plan",
                    ["part-00001.parquet: column 'balance' has type string", "needs a numeric column"]),
    "truncated_parquet": ("2026-11-11", truncated, {}, "plan",
                          ["part-00001.parquet: cannot read the Parquet footer", "truncated or not Parquet"]),
    "empty_partition": ("2026-11-12", empty_partition, {}, "plan",
                        ["holds no Parquet files although its marker exists"]),
    "zero_row_files": ("2026-11-13", zero_row_files, {}, "plan", ["every file has zero rows"]),
    # checked after scoring, from the workers' id indexes: validate refuses, nothing is published
    "duplicate_ids": ("2026-11-14", duplicate_ids, {}, "validate",
                      ["column 'customer_id' has 2 duplicated ids", "part-00001.parquet row group 0 row 10",
                       "part-00000.parquet row group 0 row 0"]),
    "ds_path_traversal": ("2026-11-16", None, {"ds": "../../etc"}, "plan", ["'../../etc'"]),
    "model_version_shell": ("2026-11-17", None, {"model_version": "v1;reboot"}, "plan", ["v1;reboot"]),
    "shard_rows_out_of_range": ("2026-11-18", None, {"shard_rows": 0}, "plan", ["shard_rows"]),
}


@pytest.fixture(scope="module")
def runs(module_home: Path) -> dict:
    home = module_home
    demo.make_risk_partition(home / "data", ACCEPTED_DS, rows=3000, files=2, row_group_rows=500)
    odd_but_valid(risk_input(home, ACCEPTED_DS))
    plan = [{"ds": ACCEPTED_DS, "conf": {"shard_rows": 1000}, "label": "accepted"}]
    for label, (ds, damage, conf, _, _) in BAD_INPUTS.items():
        demo.make_risk_partition(home / "data", ds, rows=3000, files=2, row_group_rows=500)
        if damage:
            damage(risk_input(home, ds))
        plan.append({"ds": ds, "conf": {"shard_rows": 1000, **conf}, "label": label})
    parsed, _ = run_dates(RISK_DAG, plan, timeout_seconds=400)
    return {"home": home, "parsed": parsed}


def test_extra_reordered_columns_and_non_finite_features_publish_exactly_once(runs):
    home, run = runs["home"], runs["parsed"]["accepted"]
    assert run["states"]["publish"] == ["success"], run["states"]
    # a successful run prints no error lines (validate, cost and publish once logged "XCom not found")
    errors = [line for line in run["log"].splitlines() if "[error" in line or "XCom not found" in line]
    assert errors == [], errors[:5]
    partition = risk_output(home, ACCEPTED_DS)
    tally = assert_published_exactly_once("extra/reordered columns, null/NaN/inf features", partition,
                                          input_ids(risk_input(home, ACCEPTED_DS), ID_COLUMN), ID_COLUMN)
    assert tally.quarantined_rows >= 8  # 4 bad balances per file, plus the demo's own NaN rows
    reasons = pq.read_table(sorted((partition / "_quarantine").glob("*.parquet"))[0]).column("reason").to_pylist()
    assert any("balance" in reason for reason in reasons), reasons


@pytest.mark.parametrize("label", list(BAD_INPUTS))
def test_bad_input_fails_with_a_clear_error_and_writes_nothing(runs, label):
    home = runs["home"]
    ds, _, conf, task, texts = BAD_INPUTS[label]
    run = runs["parsed"][label]
    if run["refused"]:  # the trigger form's schema refused the param before a run existed
        error = run["refused"]
    else:
        assert run["states"][task] == ["failed"], run["states"]
        assert "publish" not in run["states"] or run["states"]["publish"] != ["success"]
        error = task_log(run["log"], task)
    for text in texts:
        assert text in error, f"{text!r} not in:\n{error[-3000:]}"
    for version in {"v1", conf.get("model_version", "v1")}:
        assert_unpublished(f"bad input: {label}", risk_output(home, ds, version), input_rows=3000)
        if task == "plan":  # a run refused later keeps its scored shards in staging, unpublished
            assert not risk_staging(home, ds, version).exists()
    # the partition published before the bad runs still matches its manifest
    accepted = risk_output(home, ACCEPTED_DS)
    assert_published_exactly_once(f"published partition after bad input {label}", accepted,
                                  input_ids(risk_input(home, ACCEPTED_DS), ID_COLUMN), ID_COLUMN)
