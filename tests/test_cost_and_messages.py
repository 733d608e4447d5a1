"""Cost is accelerator-hours times the price table; messages follow their published schemas."""

from __future__ import annotations

import jsonschema
import pytest

from nightshard.config.pipeline_config import validate_pipeline_document
from nightshard.notifications.messages import (
    ALERT_SCHEMA,
    COMPLETION_SCHEMA,
    NEXT_STEP_BY_TASK,
    alert_message,
    completion_message,
    load_schema,
)
from nightshard.reporting.cost import OUTPUT_TOKEN_WEIGHT, PriceError, load_price_table, pricing_for, run_cost


def results(*seconds_and_rows):
    return [{"shard_id": f"s{i}", "wall_seconds": s, "rows_in": r} for i, (s, r) in enumerate(seconds_and_rows)]


def test_cost_is_accelerator_hours_times_price_and_queue_wait_is_free():
    table = {"prices": {"nvidia-h100-80gb": {"spot": 4.0}}, "currency": "USD"}
    shards = results((1800, 500_000), (1800, 500_000))
    shards[0]["queue_wait_seconds"] = 7200
    report = run_cost(shards, accelerator="nvidia-h100-80gb", provisioning="spot", accelerators_per_shard=2,
                      table=table)
    assert report["accelerator_hours"] == pytest.approx(2.0)
    assert report["total_cost"] == pytest.approx(8.0)
    assert report["cost_per_million_rows"] == pytest.approx(8.0)
    assert report["queue_wait_seconds"] == 7200
    assert [s["cost"] for s in report["shards"]] == pytest.approx([4.0, 4.0])


PIPELINE = {
    "name": "scores",
    "input": {"uri": "/data/in", "id_column": "id"},
    "model": {"handler": "tabular", "version": "v1", "options": {"feature_columns": ["x"]}},
    "output": {"uri": "/data/out"},
}


def test_pricing_is_read_once_for_cost_and_estimate_with_a_gke_pods_gpus(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text('{"currency": "EUR", "prices": {"nvidia-l4": {"spot": 0.5, "on-demand": 1.5}}}')
    local = pricing_for(validate_pipeline_document(
        {**PIPELINE, "cost": {"accelerator": "nvidia-l4", "provisioning": "on-demand", "prices_file": str(prices)}}))
    assert (local.price_per_accelerator_hour, local.accelerators_per_shard, local.currency) == (1.5, 1, "EUR")
    gke = pricing_for(validate_pipeline_document(
        {**PIPELINE, "cost": {"accelerator": "nvidia-l4", "provisioning": "spot", "prices_file": str(prices)},
         "backend": {"kind": "gke", "gke": {"image": "worker:1", "accelerator": "nvidia-l4", "gpus_per_pod": 4}}}))
    assert (gke.price_per_accelerator_hour, gke.accelerators_per_shard) == (0.5, 4)
    shipped = pricing_for(validate_pipeline_document(PIPELINE))
    assert shipped.table == load_price_table() and shipped.price_per_accelerator_hour > 0


def test_killed_and_preempted_attempts_are_billed_and_counted():
    """A shard killed after 17 s and resumed for 3 s ran 20 s on the accelerator; queue wait stays free."""
    table = {"prices": {"nvidia-l4": {"spot": 3.6}}, "currency": "USD"}
    shards = results((3, 1000), (10, 1000))
    shards[0].update(attempts=2, earlier_attempts_seconds=17.0, queue_wait_seconds=600)
    report = run_cost(shards, accelerator="nvidia-l4", provisioning="spot", accelerators_per_shard=1, table=table)
    assert [(s["attempts"], s["billed_seconds"]) for s in report["shards"]] == [(2, 20.0), (1, 10)]
    assert report["accelerator_hours"] == pytest.approx(30 / 3600) and report["attempts"] == 3
    assert report["total_cost"] == pytest.approx(0.03)


def test_llm_cost_is_split_into_dollars_per_million_input_and_output_tokens_and_sent_in_the_message():
    table = {"prices": {"nvidia-l4": {"spot": 1.0}}, "currency": "USD"}
    shards = results((1800, 1000), (1800, 1000))
    for shard in shards:
        shard.update(input_tokens=600_000, output_tokens=100_000)
    report = run_cost(shards, accelerator="nvidia-l4", provisioning="spot", accelerators_per_shard=1, table=table)
    assert (report["input_tokens"], report["output_tokens"]) == (1_200_000, 200_000)
    assert report["tokens_per_second"] == pytest.approx(1_400_000 / 3600)
    # An output token weighs OUTPUT_TOKEN_WEIGHT input tokens; the two shares add up to the total.
    input_share = report["cost_per_million_input_tokens"] * 1.2
    output_share = report["cost_per_million_output_tokens"] * 0.2
    assert input_share + output_share == pytest.approx(report["total_cost"])
    assert report["cost_per_million_output_tokens"] == pytest.approx(
        OUTPUT_TOKEN_WEIGHT * report["cost_per_million_input_tokens"])
    assert "input_tokens" not in run_cost(results((1800, 1000)), accelerator="nvidia-l4", provisioning="spot",
                                          accelerators_per_shard=1, table=table)

    plan = {"pipeline": "p", "ds": "2026-11-22", "model_version": "v1", "run_id": "scheduled__x"}
    published = {"output_partition": "gs://b/p", "manifest_uri": "gs://b/p/_manifest.json",
                 "rows": {"output": 2000, "quarantined": 0}}
    message = completion_message(plan, published, report)
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA), format_checker=jsonschema.FormatChecker())
    assert message["cost"]["per_million_input_tokens"] == pytest.approx(report["cost_per_million_input_tokens"])
    assert message["cost"]["output_tokens"] == 200_000


def test_shipped_price_table_covers_every_accelerator_and_mode():
    table = load_price_table()
    assert table["source"] and table["recorded"]
    from nightshard.backends.gke.accelerators import ACCELERATORS

    for accelerator in ACCELERATORS:
        assert set(table["prices"][accelerator]) == {"on-demand", "spot", "flex-start", "queued"}
        assert table["prices"][accelerator]["spot"] < table["prices"][accelerator]["on-demand"]


def test_unknown_accelerator_says_what_the_table_knows():
    with pytest.raises(PriceError, match="no price for accelerator 'tpu'"):
        run_cost(results((1, 1)), accelerator="tpu", provisioning="spot", accelerators_per_shard=1,
                 table=load_price_table())


def test_completion_message_matches_its_schema():
    plan = {"pipeline": "p", "ds": "2026-11-22", "model_version": "v1", "run_id": "scheduled__x"}
    published = {"output_partition": "gs://b/p/ds=2026-11-22", "manifest_uri": "gs://b/p/ds=2026-11-22/_manifest.json",
                 "rows": {"output": 10, "quarantined": 1}}
    cost = {"total_cost": 1.5, "currency": "USD", "cost_per_million_rows": 150000.0, "accelerator_hours": 0.1}
    message = completion_message(plan, published, cost)
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA), format_checker=jsonschema.FormatChecker())
    broken = {**message, "rows": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema(COMPLETION_SCHEMA))


def test_alert_carries_the_given_next_step_else_the_tasks_usual_one():
    given = alert_message(pipeline="p", dag_id="nightshard_p", ds="2026-11-22", run_id="r", task="infer",
                          shard="00001-abcd", try_number=3, cause="shard 00001-abcd failed: crashed",
                          next_step="read the traceback", log_url=None)
    jsonschema.validate(given, load_schema(ALERT_SCHEMA))
    assert given["next_step"] == "read the traceback"
    assert given["shard"] == "00001-abcd"
    usual = alert_message(pipeline="p", dag_id="nightshard_p", ds="2026-11-22", run_id="r", task="publish",
                          shard=None, try_number=1, cause="disk full", log_url=None)
    assert usual["next_step"] == NEXT_STEP_BY_TASK["publish"]
