"""Demo data and the demo tabular model, made at setup so the embedded default runs end to end.

    python -m nightshard_dev.demo --ds 2026-11-22 [--ds ...]

writes, under $NIGHTSHARD_HOME (default <repo>/var):
    data/features/risk/ds=<date>/part-*.parquet + _SUCCESS       for pipeline tabular_risk
    data/features/catalogue/ds=<date>/part-*.parquet + _SUCCESS  for pipeline text_embeddings
    data/features/reviews/ds=<date>/part-*.parquet + _SUCCESS    for pipeline review_sentiment (llm)
    models/tabular_risk/v1/model.pt + model.json                 TorchScript MLP trained here

A few rows are bad on purpose (NaN features, empty descriptions, null or over-long reviews) so the
quarantine path runs too.
Data is a pure function of (date, seed): reruns produce byte-identical partitions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

import numpy as np

from nightshard.config.pipeline_config import expand_environment

RISK_FEATURES = [
    "tenure_months", "balance", "utilisation", "payments_late_90d", "income", "age",
    "open_accounts", "inquiries_30d", "savings_ratio", "txn_count_30d", "txn_amount_30d", "region_risk",
]
# The ground truth the demo model learns: a fixed logistic rule over standardised features.
TRUE_WEIGHTS = np.array([-0.8, 0.3, 1.2, 1.5, -0.6, -0.2, 0.1, 0.9, -1.0, 0.2, 0.3, 0.7], dtype=np.float32)
BAD_ROW_EVERY = 997  # about 0.1% bad rows: exercises quarantine, stays far below the 5% run limit

WORDS = (
    "waterproof lightweight jacket breathable hiking trail running shoe cushioned stainless steel kettle "
    "electric fast boil ceramic mug handmade glaze wireless noise cancelling headphones battery life "
    "organic cotton t-shirt slim fit kids backpack school reflective ergonomic office chair lumbar "
    "support adjustable standing desk bamboo cutting board knife set chef forged smart watch heart rate "
    "gps leather wallet minimalist travel adapter universal yoga mat non-slip camping tent two person"
).split()


# Short product reviews built from phrases of a known sentiment; `stars` is the ground truth the
# review_sentiment pipeline's labels are checked against (4-5 positive, 1-2 negative).
POSITIVE_PHRASES = (
    "I love this", "works perfectly", "excellent quality", "would buy again", "very happy with it",
    "fantastic value", "exceeded my expectations", "highly recommend it",
)
NEGATIVE_PHRASES = (
    "broke after a day", "waste of money", "very disappointed", "poor quality", "do not buy this",
    "stopped working", "terrible customer service", "arrived damaged",
)
PRODUCTS = ("jacket", "kettle", "mug", "backpack", "chair", "desk", "tent", "wallet", "watch", "yoga mat")
REVIEW_NULL_EVERY = 47  # null reviews: quarantined as "column 'review' is null"
REVIEW_LONG_EVERY = 59  # rambling reviews longer than the pipeline's context: quarantined with their length


def home() -> Path:
    return Path(expand_environment("${NIGHTSHARD_HOME}"))


def _seed(ds: str, salt: int) -> int:
    return int(ds.replace("-", "")) * 1000 + salt


def write_partition(folder: Path, table_by_file: list, row_group_rows: int) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for marker in folder.glob("_SUCCESS"):
        marker.unlink()
    for index, table in enumerate(table_by_file):
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=row_group_rows)
    (folder / "_SUCCESS").write_text("")  # written last, as an upstream job would


def make_risk_partition(root: Path, ds: str, rows: int, files: int = 4, row_group_rows: int = 10_000) -> Path:
    import pyarrow as pa

    rng = np.random.default_rng(_seed(ds, 1))
    features = rng.standard_normal((rows, len(RISK_FEATURES)), dtype=np.float32)
    bad = np.arange(rows) % BAD_ROW_EVERY == BAD_ROW_EVERY - 1
    features[bad, 2] = np.nan
    ids = np.arange(rows, dtype=np.int64) + int(ds.replace("-", "")) * 10_000_000
    columns = {"customer_id": ids, **{name: features[:, i] for i, name in enumerate(RISK_FEATURES)}}
    table = pa.table(columns)
    per_file = -(-rows // files)
    tables = [table.slice(start, per_file) for start in range(0, rows, per_file)]
    folder = root / "features" / "risk" / f"ds={ds}"
    write_partition(folder, tables, row_group_rows)
    return folder


def make_catalogue_partition(root: Path, ds: str, rows: int, files: int = 2, row_group_rows: int = 250) -> Path:
    import pyarrow as pa

    rng = np.random.default_rng(_seed(ds, 2))
    # long-tailed lengths, like real catalogues: most descriptions short, a few long
    lengths = np.clip(rng.lognormal(mean=2.6, sigma=0.7, size=rows).astype(int), 3, 200)
    texts = [" ".join(rng.choice(WORDS, size=length)) for length in lengths]
    for index in range(BAD_ROW_EVERY // 4, rows, BAD_ROW_EVERY // 4 * 4):
        texts[index] = ""
    ids = [f"sku-{ds.replace('-', '')}-{i:07d}" for i in range(rows)]
    table = pa.table({"item_id": pa.array(ids), "description": pa.array(texts)})
    per_file = -(-rows // files)
    tables = [table.slice(start, per_file) for start in range(0, rows, per_file)]
    folder = root / "features" / "catalogue" / f"ds={ds}"
    write_partition(folder, tables, row_group_rows)
    return folder


def make_reviews_partition(root: Path, ds: str, rows: int, files: int = 2, row_group_rows: int = 100) -> Path:
    import pyarrow as pa

    rng = np.random.default_rng(_seed(ds, 3))
    products = rng.choice(PRODUCTS, size=rows)
    positive = rng.random(rows) < 0.5
    reviews: list[str | None] = []
    for index in range(rows):
        phrases = POSITIVE_PHRASES if positive[index] else NEGATIVE_PHRASES
        picked = rng.choice(len(phrases), size=2, replace=False)
        reviews.append(f"This {products[index]}: {phrases[picked[0]]}, {phrases[picked[1]]}.")
    for index in range(REVIEW_NULL_EVERY - 1, rows, REVIEW_NULL_EVERY):
        reviews[index] = None
    for index in range(REVIEW_LONG_EVERY - 1, rows, REVIEW_LONG_EVERY):
        reviews[index] = " ".join(rng.choice(WORDS, size=400))
    stars = np.where(positive, rng.integers(4, 6, rows), rng.integers(1, 3, rows)).astype(np.int8)
    ids = [f"rev-{ds.replace('-', '')}-{i:06d}" for i in range(rows)]
    table = pa.table({"review_id": pa.array(ids), "review": pa.array(reviews, pa.string()),
                      "stars": pa.array(stars)})
    per_file = -(-rows // files)
    tables = [table.slice(start, per_file) for start in range(0, rows, per_file)]
    folder = root / "features" / "reviews" / f"ds={ds}"
    write_partition(folder, tables, row_group_rows)
    return folder


def train_risk_model(models_root: Path, version: str = "v1", rows: int = 20_000, epochs: int = 30) -> Path:
    """Train the demo MLP on the ground-truth rule and save it as TorchScript with its metadata."""
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    features = rng.standard_normal((rows, len(RISK_FEATURES)), dtype=np.float32)
    logits = features @ TRUE_WEIGHTS
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    model = torch.nn.Sequential(
        torch.nn.Linear(len(RISK_FEATURES), 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 1), torch.nn.Sigmoid(),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(features), torch.from_numpy(labels).unsqueeze(1)
    for _ in range(epochs):
        for start in range(0, rows, 1024):
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy(model(x[start:start + 1024]), y[start:start + 1024])
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        scores = model(x).squeeze(1).numpy()
    accuracy = float(((scores > 0.5) == (labels > 0.5)).mean())
    folder = models_root / "tabular_risk" / version
    folder.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.trace(model, x[:8])
    temporary = folder / "model.pt.tmp"
    torch.jit.save(scripted, str(temporary))
    os.replace(temporary, folder / "model.pt")
    metadata = {
        "name": "tabular_risk", "version": version, "format": "torchscript", "feature_columns": RISK_FEATURES,
        "output": "probability of default", "train_rows": rows, "train_accuracy": round(accuracy, 4),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (folder / "model.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", action="append", required=True, help="partition date(s) to generate")
    parser.add_argument("--risk-rows", type=int, default=120_000)
    parser.add_argument("--catalogue-rows", type=int, default=2_000)
    parser.add_argument("--review-rows", type=int, default=200)
    parser.add_argument("--skip-model", action="store_true", help="keep an existing model")
    arguments = parser.parse_args(argv)
    root = home()
    model_file = root / "models" / "tabular_risk" / "v1" / "model.pt"
    if not (arguments.skip_model and model_file.exists()):
        print(f"trained demo model: {train_risk_model(root / 'models')}")
    for ds in arguments.ds:
        print(f"wrote {make_risk_partition(root / 'data', ds, arguments.risk_rows)}")
        print(f"wrote {make_catalogue_partition(root / 'data', ds, arguments.catalogue_rows)}")
        print(f"wrote {make_reviews_partition(root / 'data', ds, arguments.review_rows)}")


if __name__ == "__main__":
    main()
