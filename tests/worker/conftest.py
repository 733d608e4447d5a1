"""Worker test fixtures: real Parquet, real models, specs built with the contract, the real CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hang_guard import hang_guard

from nightshard_worker.contract import InputSlice, ModelSpec, RuntimeSpec, ShardResult, ShardSpec

TESTS_DIR = Path(__file__).resolve().parent
FEATURES = ["f0", "f1", "f2", "f3"]


def worker_environment(**extra: str) -> dict[str, str]:
    # tests/worker on the path so that "worker_test_handlers:Class" user handlers import.
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def worker_command(spec_path: Path) -> list[str]:
    return [sys.executable, "-m", "nightshard_worker.cli", "run", "--spec", str(spec_path)]


def run_worker(spec_path: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(worker_command(spec_path), capture_output=True, text=True, timeout=hang_guard(timeout),
                          env=worker_environment())


def start_worker(spec_path: Path) -> subprocess.Popen:
    return subprocess.Popen(worker_command(spec_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=worker_environment())


def write_parquet(path: Path, table: pa.Table, row_group_rows: int) -> InputSlice:
    pq.write_table(table, path, row_group_size=row_group_rows)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    return InputSlice(path=str(path), row_groups=tuple(range(groups)), rows=table.num_rows)


def tabular_table(rows: int, start_id: int = 0, seed: int = 0) -> pa.Table:
    generator = np.random.default_rng(seed)
    columns = {"id": pa.array(np.arange(start_id, start_id + rows, dtype=np.int64))}
    for name in FEATURES:
        columns[name] = pa.array(generator.normal(size=rows))
    return pa.table(columns)


@pytest.fixture(scope="session")
def tabular_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TorchScript logistic model over FEATURES, saved with torch.jit.save."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(len(FEATURES), 1), torch.nn.Sigmoid())
    path = tmp_path_factory.mktemp("artifact") / "model.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def make_spec(tmp_path: Path, inputs: list[InputSlice], model: ModelSpec, shard_id: str = "0000",
              **runtime: object) -> ShardSpec:
    defaults = {"threads": 1, "preprocess_workers": 1, "progress_interval_seconds": 0.5}
    out = tmp_path / "out"
    return ShardSpec(
        pipeline="test", ds="2026-01-01", run_id="manual__1", shard_id=shard_id, shard_index=0,
        shard_count=1, inputs=tuple(inputs), input_rows=sum(s.rows for s in inputs), id_column="id",
        model=model, runtime=RuntimeSpec(**{**defaults, **runtime}),
        output_path=str(out / f"part-{shard_id}.parquet"),
        quarantine_path=str(out / f"quarantine-{shard_id}.parquet"),
        result_path=str(out / f"result-{shard_id}.json"),
        checkpoint_dir=str(tmp_path / "checkpoint" / shard_id),
    )


def save_spec(spec: ShardSpec, tmp_path: Path) -> Path:
    path = tmp_path / f"spec-{spec.shard_id}.json"
    path.write_text(spec.to_json())
    return path


def with_runtime(spec: ShardSpec, **changes: object) -> ShardSpec:
    return dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, **changes))


def read_result(spec: ShardSpec) -> ShardResult:
    return ShardResult.from_json(Path(spec.result_path).read_text())


def progress_record(spec: ShardSpec) -> dict | None:
    path = Path(spec.checkpoint_dir) / "progress.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def output_ids(spec: ShardSpec) -> list:
    ids = pq.read_table(spec.output_path).column("id").to_pylist()
    ids += pq.read_table(spec.quarantine_path).column("id").to_pylist()
    return ids


def png_bytes(colour: tuple[int, int, int], pattern: str = "solid", size: int = 96) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), colour)
    if pattern == "stripes":
        draw = ImageDraw.Draw(image)
        for x in range(0, size, 12):
            draw.rectangle([x, 0, x + 5, size], fill=(255 - colour[0], 255 - colour[1], 255 - colour[2]))
    elif pattern == "circle":
        ImageDraw.Draw(image).ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
