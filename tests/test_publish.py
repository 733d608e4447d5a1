"""Publishing: `_SUCCESS` last, atomic replacement, and a failed publish leaves the old partition whole."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nightshard import storage
from nightshard.config.pipeline_config import validate_pipeline_document
from nightshard.publishing import publish_task as publish_step

DS = "2026-11-22"


def config_for(root: Path):
    return validate_pipeline_document({
        "name": "scores",
        "input": {"uri": str(root / "in"), "id_column": "id"},
        "model": {"handler": "tabular", "version": "v1", "options": {"feature_columns": ["x"]}},
        "output": {"uri": str(root / "out")},
    })


def stage_run(root: Path, config, scores: list[float]) -> tuple[dict, list[dict]]:
    staging = root / "out" / "scores" / "model_version=v1" / "_staging" / f"ds={DS}"
    staging.mkdir(parents=True, exist_ok=True)
    results = []
    for shard, score in enumerate(scores):
        path = staging / f"part-{shard:05d}-abc.parquet"
        pq.write_table(pa.table({"id": [shard * 10 + i for i in range(10)], "score": [score] * 10}), path)
        results.append({
            "shard_id": f"{shard:05d}-abc", "status": "succeeded", "rows_in": 10, "rows_out": 10,
            "rows_quarantined": 0, "output_path": str(path), "quarantine_path": str(staging / "_q" / "none"),
            "output_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "output_columns": {"id": "int64"},
            "started_at": "2026-11-23T03:00:00+00:00", "finished_at": "2026-11-23T03:01:00+00:00",
            "wall_seconds": 60.0, "stage_seconds": {"predict": 50.0},
        })
    (staging / "_owner.json").write_text(json.dumps({"run_id": "r1"}))
    plan = {"pipeline": "scores", "ds": DS, "run_id": "r1", "model_version": "v1", "staging": str(staging),
            "input_partition": str(root / "in" / f"ds={DS}"), "input_files": [], "input_rows": 10 * len(scores)}
    return plan, results


def publish(root: Path, config, scores: list[float]) -> Path:
    plan, results = stage_run(root, config, scores)
    published = publish_step.publish_run(config, plan, results, {"checks": []}, {"total_cost": 0.0})
    return Path(published["output_partition"])


def scores_in(partition: Path) -> set[float]:
    return {s for p in partition.glob("part-*.parquet") for s in pq.read_table(p).column("score").to_pylist()}


def test_publish_writes_manifest_then_success_and_clears_staging(tmp_path):
    config = config_for(tmp_path)
    partition = publish(tmp_path, config, [0.1, 0.2])
    manifest = json.loads((partition / "_manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["part-00000-abc.parquet", "part-00001-abc.parquet"]
    assert (partition / "_SUCCESS").stat().st_mtime_ns >= (partition / "_manifest.json").stat().st_mtime_ns
    assert not (tmp_path / "out" / "scores" / "model_version=v1" / "_staging" / f"ds={DS}").exists()


def test_rerun_replaces_the_partition_whole(tmp_path):
    config = config_for(tmp_path)
    publish(tmp_path, config, [0.1, 0.2, 0.3])
    partition = publish(tmp_path, config, [0.9])
    assert scores_in(partition) == {0.9}
    assert sorted(p.name for p in partition.glob("part-*")) == ["part-00000-abc.parquet"]
    table_folder = partition.parent
    assert sorted(p.name for p in table_folder.iterdir()) == [f"ds={DS}"]


def test_disk_full_during_publish_keeps_the_old_partition_and_a_retry_succeeds(tmp_path, monkeypatch):
    config = config_for(tmp_path)
    partition = publish(tmp_path, config, [0.1])
    old_manifest = (partition / "_manifest.json").read_text()
    plan, results = stage_run(tmp_path, config, [0.7, 0.8])

    real_write = storage.write_text_atomic

    def disk_full(uri, text):
        if uri.endswith("_SUCCESS"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(uri, text)

    monkeypatch.setattr(publish_step.storage, "write_text_atomic", disk_full)
    with pytest.raises(OSError, match="No space left"):
        publish_step.publish_run(config, plan, results, {"checks": []}, {"total_cost": 0.0})
    assert (partition / "_manifest.json").read_text() == old_manifest  # readers still see the old, whole
    assert scores_in(partition) == {0.1}

    monkeypatch.setattr(publish_step.storage, "write_text_atomic", real_write)
    publish_step.publish_run(config, plan, results, {"checks": []}, {"total_cost": 0.0})
    assert scores_in(partition) == {0.7, 0.8}
    assert sorted(p.name for p in partition.parent.iterdir()) == [f"ds={DS}"]  # no half-built leftovers


def test_other_dates_and_model_versions_are_untouched(tmp_path):
    config = config_for(tmp_path)
    neighbour = tmp_path / "out" / "scores" / "model_version=v0" / f"ds={DS}"
    neighbour.mkdir(parents=True)
    (neighbour / "_SUCCESS").write_text("")
    other_day = tmp_path / "out" / "scores" / "model_version=v1" / "ds=2026-11-21"
    other_day.mkdir(parents=True)
    (other_day / "_SUCCESS").write_text("")
    publish(tmp_path, config, [0.5])
    assert (neighbour / "_SUCCESS").exists() and (other_day / "_SUCCESS").exists()


def test_a_run_whose_staging_was_taken_over_publishes_nothing(tmp_path):
    config = config_for(tmp_path)
    partition = publish(tmp_path, config, [0.1])
    plan, results = stage_run(tmp_path, config, [0.5, 0.6])
    (Path(plan["staging"]) / "_owner.json").write_text(json.dumps({"run_id": "a-later-run"}))
    with pytest.raises(publish_step.StagingTakenOver, match="another run of ds=2026-11-22 planned after it"):
        publish_step.publish_run(config, plan, results, {"checks": []}, {"total_cost": 0.0})
    assert scores_in(partition) == {0.1}
