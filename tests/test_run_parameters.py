"""Run params: the trigger form's schema and the task-side check reject the same bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jsonschema
import pytest

from nightshard.config.pipeline_config import load_pipeline_config
from nightshard.config.run_parameters import RunParameterError, build_params, resolve_run_parameters

CONFIG = load_pipeline_config(Path(__file__).resolve().parents[1] / "dags" / "pipelines" / "tabular_risk.yaml")
LOGICAL = dt.datetime(2026, 11, 22, 3, tzinfo=dt.UTC)

BAD_PARAMS = [
    {"ds": "../../etc"},
    {"ds": "2026-13-40"},
    {"ds": "2026-11-22; rm -rf /"},
    {"model_version": "v1;reboot"},
    {"model_version": "../v1"},
    {"model_version": "$(id)"},
    {"shard_rows": 0},
    {"shard_rows": "many"},
    {"reprocess": "everything"},
]


def test_defaults_take_the_logical_date_and_the_config():
    run = resolve_run_parameters(CONFIG, {}, LOGICAL)
    assert (run.ds, run.model_version, run.shard_rows, run.reprocess, run.dry_run) == (
        "2026-11-22", "v1", 40000, "missing", False)


def test_params_override_the_defaults():
    run = resolve_run_parameters(
        CONFIG, {"ds": "2026-11-20", "model_version": "v2", "shard_rows": 5, "reprocess": "all", "dry_run": True},
        LOGICAL)
    assert (run.ds, run.model_version, run.shard_rows, run.reprocess, run.dry_run) == (
        "2026-11-20", "v2", 5, "all", True)


@pytest.mark.parametrize("bad", BAD_PARAMS, ids=lambda b: repr(b))
def test_task_side_check_rejects_bad_params(bad):
    with pytest.raises(RunParameterError):
        resolve_run_parameters(CONFIG, bad, LOGICAL)


@pytest.mark.parametrize("bad", [b for b in BAD_PARAMS if b != {"ds": "2026-13-40"}], ids=lambda b: repr(b))
def test_trigger_form_schema_rejects_bad_params(bad):
    [(name, value)] = bad.items()
    schema = build_params(CONFIG)[name].schema
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema)


def test_a_run_without_logical_date_needs_a_ds():
    with pytest.raises(RunParameterError, match="set ds=YYYY-MM-DD"):
        resolve_run_parameters(CONFIG, {}, None)


@pytest.mark.parametrize(
    ("params", "logical_date", "expected"),
    [
        ({"ds": "2026-11-20"}, dt.datetime(2026, 11, 22, tzinfo=dt.UTC), "2026-11-20"),
        ({"ds": None}, dt.datetime(2026, 11, 22, 23, 59, tzinfo=dt.UTC), "2026-11-22"),
        ({}, None, None),
        ({"ds": "not-a-date"}, None, "not-a-date"),  # unchecked: the alert names what was asked
    ],
)
def test_the_requested_date_is_the_ds_param_else_the_logical_date(params, logical_date, expected):
    from nightshard.config.run_parameters import requested_ds, resolve_ds

    assert requested_ds(params, logical_date) == expected
    if expected == "2026-11-20" or expected == "2026-11-22":
        assert resolve_ds(params, logical_date) == expected
