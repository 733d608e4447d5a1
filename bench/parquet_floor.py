"""The Parquet floor: the shard read and its output written, with no model in between.

No Parquet-in / Parquet-out pipeline can score faster than it can move the bytes, however well it
overlaps: with reading, writing and the forward pass perfectly overlapped, a shard still takes at
least as long as its slowest part. So `floor rows/s / ceiling rows/s` bounds what `worker / ceiling`
can reach on the machine at hand; where the forward pass already fills every core, the parts add up
instead and the bound is `floor / (floor + ceiling)`. For a model that costs next to nothing (the
demo risk MLP) the floor is of the same order as the ceiling: moving the bytes, not the model, sets
the pace, and that is measured here rather than argued.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.workloads import ID_COLUMN, Workload
from nightshard_worker import output_files


def time_parquet_in_and_out(workload: Workload, columns: list[str], folder: Path) -> float:
    """Seconds to read `columns` of the shard and write id + one float32 per row, encoded as the
    worker encodes its tabular output (snappy, no dictionaries on ids and floats)."""
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / "floor.parquet"
    started = time.perf_counter()
    table = pq.read_table(workload.path, columns=[ID_COLUMN, *columns])
    first = table.column(columns[0]).combine_chunks()
    score = pa.array(np.asarray(first, dtype=np.float32), pa.float32())  # one value a row, as a model gives
    output = pa.table({ID_COLUMN: table.column(ID_COLUMN), "score": score})
    pq.write_table(output, destination, use_dictionary=output_files.dictionary_columns(output.schema))
    seconds = time.perf_counter() - started
    if pq.ParquetFile(destination).metadata.num_rows != workload.rows:
        raise RuntimeError(f"the Parquet floor wrote {pq.ParquetFile(destination).metadata.num_rows} "
                           f"of {workload.rows} rows")
    return seconds


def measure(workload: Workload, columns: list[str], folder: Path, reps: int,
            medians: dict[str, dict]) -> dict:
    """Median floor rows/s over `reps` (at least 3: each is a fraction of a second), and the two
    ratios it explains: floor / ceiling (the most `worker / ceiling` can be) and worker / floor."""
    seconds = statistics.median(time_parquet_in_and_out(workload, columns, folder) for _ in range(max(3, reps)))
    rows_per_second = workload.rows / seconds
    ceiling = medians.get("ceiling", {}).get("steady")
    worker = medians.get("worker", {}).get("steady")
    return {
        "rows_per_second": round(rows_per_second, 1),
        "floor_of_ceiling": None if not ceiling else rows_per_second / ceiling,
        "worker_of_floor": None if not worker else worker / rows_per_second,
    }
