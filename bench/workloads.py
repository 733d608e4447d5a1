"""The three benchmark workloads: deterministic data on disk, and the model spec that scores it.

Every workload is a pure function of (rows, seed): reruns write byte-identical Parquet, so two runs
of the benchmark compare the same input. No bad rows on purpose: every variant scores every row,
so rows/s means the same thing for all of them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nightshard_worker.contract import ModelSpec

SEED = 20261123
ID_COLUMN = "id"

# Text: word counts drawn from a lognormal (median ~30 words, long right tail), clipped so that the
# tokenised length spans 8 to 256 tokens: most rows short, a few hundred-token ones, as in real
# catalogues and support tickets. That tail is what padding-to-the-batch-max pays for.
TEXT_WORDS_MEDIAN = 30
TEXT_WORDS_SIGMA = 0.8
TEXT_WORDS_MIN, TEXT_WORDS_MAX = 6, 220
# 150-row row groups, small on purpose, as writers that flush often leave them: the worker must
# group them into steps (at least 8 batches, 1024 rows) to fill its batches and sort by length
# across a step; the naive loop and Ray Data see the same file.
TEXT_ROW_GROUP_ROWS = 150
TEXT_BATCH_SIZE = 128  # rows per forward pass for every text variant (worker: capped further by tokens)

# Tabular: the demo risk model (12 features, MLP 64-32-1), scored in large batches.
TABULAR_ROW_GROUP_ROWS = 10_000  # as the demo partitions are written
TABULAR_BATCH_SIZE = 8192
# tabular_wide: the same 12 features through a production-size risk MLP (12 -> 1024 -> 512 -> 256 -> 1,
# ~1.3 MFLOP a row, 270x the demo's). The demo MLP costs ~5 kFLOP a row, so any pipeline around it
# measures Parquet and Python, not the model; this one is what a team's nightly scorer costs.
WIDE_TABULAR_LAYERS = (1024, 512, 256)

MODEL_DESCRIPTIONS = {
    "text": "all-MiniLM-L6-v2 embeddings",
    "tabular": "demo risk MLP 12-64-32-1, ~5 kFLOP/row: I/O-bound, the pipeline's own cost shows",
    "tabular_wide": "production-size risk MLP 12-1024-512-256-1, ~1.3 MFLOP/row",
    "image": "EfficientNet-Lite0 ImageNet classifier",
}

# Images: small PNGs (the handler resizes to 224x224 anyway), batches of 32.
IMAGE_SIDE = 64
IMAGE_ROW_GROUP_ROWS = 128
IMAGE_BATCH_SIZE = 32

WORDS = (
    "the a of to and in for is on with as by at from shipping order refund delivered damaged package "
    "customer support account password reset invoice payment card declined subscription cancel renew "
    "waterproof lightweight jacket breathable hiking trail running shoe cushioned stainless steel kettle "
    "electric ceramic mug handmade wireless noise-cancelling headphones battery organic cotton t-shirt "
    "ergonomic office chair lumbar adjustable standing desk bamboo cutting board smartwatch gps leather "
    "wallet travel adapter universal yoga mat non-slip camping tent warranty replacement unfortunately"
).split()


@dataclass
class Workload:
    """One benchmark input: where its Parquet lives, how many rows, and how to score it."""

    name: str
    path: Path
    rows: int
    model: ModelSpec
    batch_size: int
    runtime: dict = field(default_factory=dict)  # RuntimeSpec overrides for the worker


def text_lengths_in_words(rows: int, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    words = rng.lognormal(mean=np.log(TEXT_WORDS_MEDIAN), sigma=TEXT_WORDS_SIGMA, size=rows)
    return np.clip(words.astype(int), TEXT_WORDS_MIN, TEXT_WORDS_MAX)


def write_text(folder: Path, rows: int, seed: int = SEED) -> Workload:
    rng = np.random.default_rng(seed + 1)
    texts = [" ".join(rng.choice(WORDS, size=count)) for count in text_lengths_in_words(rows, seed)]
    table = pa.table({ID_COLUMN: pa.array(np.arange(rows, dtype=np.int64)), "text": pa.array(texts)})
    path = folder / f"text-{rows}.parquet"
    pq.write_table(table, path, row_group_size=TEXT_ROW_GROUP_ROWS)
    model = ModelSpec(handler="text_embedding", version="all-minilm-l6-v2", options={"text_column": "text"})
    return Workload("text", path, rows, model, TEXT_BATCH_SIZE)


def train_tabular_model(folder: Path) -> Path:
    """The demo's TorchScript MLP, trained once here (a few seconds)."""
    from nightshard_dev.demo import train_risk_model

    return train_risk_model(folder, rows=4096, epochs=3) / "model.pt"


def build_wide_tabular_model(folder: Path) -> Path:
    """TorchScript MLP with WIDE_TABULAR_LAYERS, seeded weights: throughput does not depend on training."""
    import torch
    from nightshard_dev.demo import RISK_FEATURES

    torch.manual_seed(SEED)
    layers, width = [], len(RISK_FEATURES)
    for hidden in WIDE_TABULAR_LAYERS:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1), torch.nn.Sigmoid()).eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def wide_tabular_flops_per_row() -> int:
    from nightshard_dev.demo import RISK_FEATURES

    widths = (len(RISK_FEATURES), *WIDE_TABULAR_LAYERS, 1)
    return sum(2 * inputs * outputs for inputs, outputs in zip(widths, widths[1:]))


def write_tabular(folder: Path, rows: int, artifact: Path, seed: int = SEED, name: str = "tabular") -> Workload:
    from nightshard_dev.demo import RISK_FEATURES

    rng = np.random.default_rng(seed + 2)
    features = rng.standard_normal((rows, len(RISK_FEATURES)), dtype=np.float32)
    columns = {ID_COLUMN: np.arange(rows, dtype=np.int64), **{n: features[:, i] for i, n in enumerate(RISK_FEATURES)}}
    path = folder / f"{name}-{rows}.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=TABULAR_ROW_GROUP_ROWS)
    model = ModelSpec(handler="tabular", version="bench", artifact=str(artifact),
                      options={"feature_columns": list(RISK_FEATURES)})
    return Workload(name, path, rows, model, TABULAR_BATCH_SIZE)


def image_png(rng: np.random.Generator, side: int = IMAGE_SIDE) -> bytes:
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, size=3))
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = (int(v) for v in rng.integers(0, side // 2, size=2))
        x1, y1 = x0 + int(rng.integers(8, side // 2)), y0 + int(rng.integers(8, side // 2))
        draw.ellipse([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, size=3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_image(folder: Path, rows: int, seed: int = SEED) -> Workload:
    rng = np.random.default_rng(seed + 3)
    images = [image_png(rng) for _ in range(rows)]
    table = pa.table({ID_COLUMN: pa.array(np.arange(rows, dtype=np.int64)), "image": pa.array(images, pa.binary())})
    path = folder / f"image-{rows}.parquet"
    pq.write_table(table, path, row_group_size=IMAGE_ROW_GROUP_ROWS)
    model = ModelSpec(handler="image_classification", version="efficientnet-lite0", options={"image_column": "image"})
    return Workload("image", path, rows, model, IMAGE_BATCH_SIZE)
