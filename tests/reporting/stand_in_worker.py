"""A stand-in for `nightshard-worker run --spec <spec>` until the real worker lands: reads the shard's
row groups, scores each row with a fixed formula (no model), writes the output Parquet and a
ShardResult with timings and a histogram. Enough to drive validate, cost, publish and the reports."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import time
from pathlib import Path

HISTOGRAM_BINS = 10


def main(spec_path: str) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshard_worker.contract import STATUS_SUCCEEDED, PredictionHistogram, ShardResult, ShardSpec

    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    spec = ShardSpec.from_json(Path(spec_path).read_text())
    tables = [pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups)) for piece in spec.inputs]
    table = pa.concat_tables(tables)
    read_seconds = time.monotonic() - clock
    features = [name for name in table.column_names if name != spec.id_column]
    matrix = np.nan_to_num(np.column_stack([table.column(name).to_numpy(zero_copy_only=False) for name in features]))
    scores = (1 / (1 + np.exp(-matrix.mean(axis=1)))).astype(np.float32)
    output = pa.table({spec.id_column: table.column(spec.id_column), "score": scores})
    Path(spec.output_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(output, spec.output_path)
    counts, edges = np.histogram(scores, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    wall = time.monotonic() - clock
    data = Path(spec.output_path).read_bytes()
    result = ShardResult(
        shard_id=spec.shard_id, status=STATUS_SUCCEEDED, spec_fingerprint=spec.fingerprint(),
        rows_in=table.num_rows, rows_out=table.num_rows, rows_quarantined=0, output_path=spec.output_path,
        output_bytes=len(data), output_sha256=hashlib.sha256(data).hexdigest(),
        output_columns={field.name: str(field.type) for field in output.schema},
        started_at=started.isoformat(), finished_at=dt.datetime.now(dt.UTC).isoformat(),
        wall_seconds=wall, stage_seconds={"read": read_seconds, "predict": wall - read_seconds},
        device="cpu", device_name="stand-in",
        histogram=PredictionHistogram(edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts)),
    )
    Path(spec.result_path).parent.mkdir(parents=True, exist_ok=True)
    Path(spec.result_path).write_text(result.to_json())
    print(f"stand-in worker scored {table.num_rows} rows of {spec.shard_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[sys.argv.index("--spec") + 1]))
