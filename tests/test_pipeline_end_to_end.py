"""Whole nightly runs through the real DAGs with dag.test(): real Parquet, real torch models.

Each asserts the product's invariant: every input id lands exactly once, in the output or in
quarantine with a reason, and the manifest describes exactly the files that were published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nightshard_dev import demo
from pipeline_runs import (
    ids_in,
    input_ids,
    outbox_messages,
    published_partition,
    read_manifest,
    run_pipeline,
    task_states,
)

from nightshard.notifications.messages import COMPLETION_SCHEMA, load_schema

DS = "2026-11-22"
GIANT_ROW_ID = "sku-20261122-0000007"

pytestmark = pytest.mark.slow


@pytest.fixture
def risk_home(nightshard_home, airflow_db):
    demo.train_risk_model(nightshard_home / "models", rows=2000, epochs=3)
    demo.make_risk_partition(nightshard_home / "data", DS, rows=6000, files=3, row_group_rows=500)
    return nightshard_home


@pytest.fixture
def catalogue_home(nightshard_home, airflow_db):
    folder = demo.make_catalogue_partition(nightshard_home / "data", DS, rows=300, files=2, row_group_rows=50)
    first = folder / "part-00000.parquet"
    table = pq.read_table(first)
    texts = table.column("description").to_pylist()
    texts[7] = "catalogue " * 2000  # ~2000 tokens: cut at max_length 256
    pq.write_table(table.set_column(1, "description", pa.array(texts)), first, row_group_size=50)
    return nightshard_home


def assert_exactly_once(partition, expected_ids, id_column):
    outputs = sorted(partition.glob("part-*.parquet"))
    quarantined = sorted((partition / "_quarantine").glob("*.parquet"))
    seen = ids_in(outputs, id_column) + ids_in(quarantined, id_column)
    assert sorted(seen) == sorted(expected_ids)
    assert len(seen) == len(set(seen))
    return outputs, quarantined


def assert_manifest_matches_files(partition):
    manifest = read_manifest(partition)
    listed = {entry["path"]: entry for entry in manifest["files"] + manifest["quarantine_files"]}
    on_disk = {str(p.relative_to(partition)) for p in partition.rglob("*.parquet")}
    assert set(listed) == on_disk
    for path, entry in listed.items():
        data = (partition / path).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert (partition / "_SUCCESS").exists()
    return manifest


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def assert_readable_by_others(home):
    """Every published file has the mode any writer under umask 022 gives: 0644, not mkstemp's 0600."""
    published = [p for p in (home / "predictions").rglob("*") if p.is_file() and "_staging" not in p.parts]
    published += list((home / "outbox").glob("*.json"))
    names = {p.name for p in published}
    assert {"_manifest.json", "_SUCCESS", "cost_report.json", "run_report.html"} <= names, names
    assert any(p.parent.name == "_quarantine" for p in published)
    modes = {str(p.relative_to(home)): oct(p.stat().st_mode & 0o777) for p in published}
    assert set(modes.values()) == {"0o644"}, modes


def test_tabular_pipeline_scores_every_row_once_and_publishes(risk_home, umask_022):
    dag_run = run_pipeline("nightshard_tabular_risk", DS, shard_rows=2000)
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert len(task_states(dag_run)["infer"]) == 3

    partition = published_partition(risk_home, "tabular_risk", "v1", DS)
    expected = input_ids(risk_home, "risk", DS, "customer_id")
    outputs, quarantined = assert_exactly_once(partition, expected, "customer_id")
    assert len(outputs) == 3 and quarantined  # demo data carries a few NaN rows on purpose

    manifest = assert_manifest_matches_files(partition)
    assert manifest["rows"] == {"input": 6000, "output": 6000 - manifest["rows"]["quarantined"],
                                "quarantined": manifest["rows"]["quarantined"]}
    assert manifest["model"]["version"] == "v1"
    assert manifest["input"]["partition"].endswith(f"features/risk/ds={DS}")
    assert manifest["code_version"]
    assert list(manifest["schema"])[:2] == ["customer_id", "score"]
    assert not (partition.parent / "_staging").exists() or not any((partition.parent / "_staging").iterdir())

    report = json.loads((risk_home / "predictions" / "tabular_risk" / "_reports" / "model_version=v1"
                         / f"ds={DS}" / "cost_report.json").read_text())
    assert report["rows"] == 6000 and report["total_cost"] > 0
    [message] = outbox_messages(risk_home, "completion")
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA))
    assert message["manifest_uri"].endswith("_manifest.json") and message["rows"] == manifest["rows"]["output"]
    assert_readable_by_others(risk_home)


def test_rerun_of_the_same_date_is_idempotent(risk_home):
    first = run_pipeline("nightshard_tabular_risk", DS, shard_rows=2000)
    assert str(first.state) == "success"
    partition = published_partition(risk_home, "tabular_risk", "v1", DS)
    before = read_manifest(partition)

    second = run_pipeline("nightshard_tabular_risk", DS, shard_rows=2000, reprocess="all")
    assert str(second.state) == "success", task_states(second)
    after = read_manifest(partition)
    assert [(f["path"], f["rows"], f["sha256"]) for f in after["files"]] == [
        (f["path"], f["rows"], f["sha256"]) for f in before["files"]]
    assert after["rows"] == before["rows"]
    leftovers = [p.name for p in partition.parent.iterdir() if p.name.startswith(("_publishing", "_replaced"))]
    assert leftovers == []


def test_dry_run_plans_without_scoring_or_publishing(risk_home):
    started = dt.datetime.now(dt.UTC)
    dag_run = run_pipeline("nightshard_tabular_risk", DS, shard_rows=2000, dry_run=True)
    # dag.test starts a DagRun at its logical date (Airflow's "run_duration" read days); the task-log
    # listener dates it from its first task
    assert started <= dag_run.start_date <= dag_run.end_date, (dag_run.start_date, dag_run.end_date)
    states = task_states(dag_run)
    assert states["plan"] == ["success"]
    assert states["publish"] == ["skipped"]
    assert not published_partition(risk_home, "tabular_risk", "v1", DS).exists()


def test_text_embedding_pipeline_with_minilm(catalogue_home):
    dag_run = run_pipeline("nightshard_text_embeddings", DS, shard_rows=150)
    assert str(dag_run.state) == "success", task_states(dag_run)
    partition = published_partition(catalogue_home, "text_embeddings", "minilm-l6-v2", DS)
    expected = input_ids(catalogue_home, "catalogue", DS, "item_id")
    outputs, _ = assert_exactly_once(partition, expected, "item_id")
    manifest = assert_manifest_matches_files(partition)
    assert manifest["schema"]["embedding"].startswith("fixed_size_list")
    # the one row longer than MiniLM's context is marked, and counted in the manifest and the report
    marked = [row["item_id"] for output in outputs
              for row in pq.read_table(output, columns=["item_id", "truncated"]).to_pylist() if row["truncated"]]
    assert marked == [GIANT_ROW_ID] and manifest["rows"]["truncated"] == 1
    report = (catalogue_home / "predictions" / "text_embeddings" / "_reports" / "model_version=minilm-l6-v2"
              / f"ds={DS}" / "run_report.html").read_text()
    assert "rows truncated to the model&#x27;s context<b>1</b>" in report


def test_review_sentiment_pipeline_labels_every_review_or_quarantines_it_with_the_reason(nightshard_home, airflow_db):
    demo.make_reviews_partition(nightshard_home / "data", DS, rows=60, files=2, row_group_rows=15)
    dag_run = run_pipeline("nightshard_review_sentiment", DS)
    assert str(dag_run.state) == "success", task_states(dag_run)
    partition = published_partition(nightshard_home, "review_sentiment", "smollm2-135m", DS)
    expected = input_ids(nightshard_home, "reviews", DS, "review_id")
    outputs, quarantined = assert_exactly_once(partition, expected, "review_id")
    manifest = assert_manifest_matches_files(partition)
    assert {"review_id", "answer", "input_tokens", "output_tokens", "finish_reason", "prompt_truncated",
            "label_probabilities"} == set(manifest["schema"])

    import pyarrow as pa
    import pyarrow.parquet as pq

    scored = pa.concat_tables([pq.read_table(path) for path in outputs])
    truth = pa.concat_tables([pq.read_table(path, columns=["review_id", "stars"])
                              for path in sorted((nightshard_home / "data" / "features" / "reviews"
                                                  / f"ds={DS}").glob("*.parquet"))])
    stars = dict(zip(truth.column("review_id").to_pylist(), truth.column("stars").to_pylist()))
    answers = scored.column("answer").to_pylist()
    right = sum((answer == "positive") == (stars[review] >= 4)
                for review, answer in zip(scored.column("review_id").to_pylist(), answers))
    assert right / len(answers) >= 0.8, f"{right}/{len(answers)} labels match the stars"
    reasons = pq.read_table(quarantined[0]).column("reason").to_pylist()
    assert "column 'review' is null" in reasons
    assert any(reason.startswith("prompt is ") and "context of 256 tokens" in reason for reason in reasons)

    # Tokens are the unit of cost: the cost report and the completion message price them.
    input_tokens = sum(scored.column("input_tokens").to_pylist())
    report = json.loads((nightshard_home / "predictions" / "review_sentiment" / "_reports"
                         / "model_version=smollm2-135m" / f"ds={DS}" / "cost_report.json").read_text())
    assert (report["input_tokens"], report["output_tokens"]) == (input_tokens, 0)
    assert report["tokens_per_second"] > 0 and report["cost_per_million_input_tokens"] > 0
    [message] = outbox_messages(nightshard_home, "completion")
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA))
    assert message["cost"]["input_tokens"] == input_tokens and message["cost"]["per_million_input_tokens"] > 0
