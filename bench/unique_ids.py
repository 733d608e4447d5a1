"""The duplicate-id check at the issue's size: 1,024 shards of a 1,000,000,000-row partition.

Each shard's input is a Parquet file of its ids (10 row groups, as plan cuts them); each shard's id
index is written by the worker's own code (`nightshard_worker.id_index.write_index`), two shards at a
time in child processes as two workers would; then validate's own check
(`nightshard.validation.id_check.check_unique_ids`) runs in a fresh child process, so its peak RSS is
its own. Three duplicates are planted, so the check has to find and name them among all the ids:
an id of the first shard again in the last shard (across shards and files), two equal ids inside one
row group, and one id three times over three shards.

    PYTHONPATH=plugins:. .venv/bin/python -m bench.unique_ids [--shards 1024] [--ids-per-shard 976563]

Printed: seconds to write the inputs and the indexes (per shard), the check's seconds, bucket reads
and peak RSS, the most ids it held at once (the largest bucket over all shards, from the indexes'
footers) against all ids, and the duplicates it reported. Needs ~20 GB of disk at full size (--workdir).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

ROW_GROUPS_PER_SHARD = 10
PLANTED_DUPLICATES = 3


def planted_ids(shard_index: int, shards: int, ids_per_shard: int):
    """The shard's ids: consecutive and unique across shards, except the three planted duplicates."""
    import numpy as np

    ids = np.arange(shard_index * ids_per_shard, (shard_index + 1) * ids_per_shard, dtype=np.int64)
    if shard_index == shards - 1:
        ids[-1] = 0  # across shards and files: the first shard's first id
    if shard_index == 1:
        ids[2] = ids[1]  # inside one row group
    if shard_index in (0, shards // 2, shards - 1):
        ids[len(ids) // 2] = ids_per_shard // 2  # one id in three shards
    return ids


def write_shard(workdir: str, shard_index: int, shards: int, ids_per_shard: int, buckets: int) -> dict:
    """Write shard `shard_index`'s input file, then its id index as its worker would; time both."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshard_worker.contract import InputSlice, ModelSpec, RuntimeSpec, ShardSpec
    from nightshard_worker.id_index import write_index

    started = time.perf_counter()
    path = os.path.join(workdir, "input", f"part-{shard_index:05d}.parquet")
    ids = planted_ids(shard_index, shards, ids_per_shard)
    pq.write_table(pa.table({"id": ids}), path, row_group_size=-(-ids_per_shard // ROW_GROUPS_PER_SHARD))
    input_written = time.perf_counter()
    spec = ShardSpec(pipeline="unique_ids", ds="2026-11-20", run_id="bench", shard_id=f"s{shard_index:05d}",
                     shard_index=shard_index, shard_count=shards,
                     inputs=[InputSlice(path=path, row_groups=tuple(range(pq.ParquetFile(path).num_row_groups)),
                                        rows=ids_per_shard)],
                     input_rows=ids_per_shard, id_column="id", model=ModelSpec(handler="tabular", version="bench"),
                     runtime=RuntimeSpec(), output_path="", quarantine_path="", result_path="", checkpoint_dir="",
                     id_index_dir=os.path.join(workdir, "_ids"), id_index_buckets=buckets)
    uri = write_index(spec)
    indexed = time.perf_counter()
    return {"shard_id": spec.shard_id, "input_seconds": input_written - started, "index_seconds": indexed - input_written,
            "index_bytes": os.path.getsize(uri), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def check(workdir: str, shard_ids: list[str], buckets: int) -> dict:
    """validate's uniqueness check over every shard's index, in this (fresh) process."""
    from nightshard.validation.id_check import check_unique_ids

    started = time.perf_counter()
    result = check_unique_ids(os.path.join(workdir, "_ids"), shard_ids, buckets=buckets, id_column="id")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "passed": result.passed, "detail": result.detail,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def bucket_sizes(workdir: str, shard_ids: list[str], buckets: int) -> tuple[int, int]:
    """(bucket reads, most ids one bucket holds over all shards), from the indexes' footers only:
    the check reads bucket b of every shard holding it and holds their ids together."""
    import pyarrow.parquet as pq

    from nightshard.validation.id_check import _open_index

    per_bucket = [0] * buckets
    reads = 0
    for shard_id in shard_ids:
        index = _open_index(os.path.join(workdir, "_ids"), shard_id, buckets)
        metadata = pq.ParquetFile(index.uri).metadata
        for bucket, group in index.row_groups.items():
            per_bucket[bucket] += metadata.row_group(group).num_rows
            reads += 1
    return reads, max(per_bucket)


def run(shards: int, ids_per_shard: int, buckets: int, workdir: str, processes: int) -> dict:
    os.makedirs(os.path.join(workdir, "input"))
    spawn = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=processes, mp_context=spawn) as pool:
        shard_writer = partial(write_shard, workdir, shards=shards, ids_per_shard=ids_per_shard, buckets=buckets)
        written = list(pool.map(shard_writer, range(shards), chunksize=4))
    build_seconds = time.perf_counter() - started
    shard_ids = [shard["shard_id"] for shard in written]
    reads, largest_bucket = bucket_sizes(workdir, shard_ids, buckets)
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        checked = pool.submit(check, workdir, shard_ids, buckets).result()
    duplicated = re.search(r"has (\d+) duplicated ids", checked["detail"])
    total_ids = shards * ids_per_shard
    return {
        "shards": shards, "ids_per_shard": ids_per_shard, "ids": total_ids, "buckets": buckets,
        "measured": time.strftime("%Y-%m-%d %H:%M"), "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "build_seconds": round(build_seconds, 1), "build_processes": processes,
        "input_seconds_per_shard_median": round(statistics.median(s["input_seconds"] for s in written), 3),
        "index_seconds_per_shard_median": round(statistics.median(s["index_seconds"] for s in written), 3),
        "index_bytes_total": sum(s["index_bytes"] for s in written),
        "index_writer_peak_rss_bytes": max(s["peak_rss_bytes"] for s in written),
        "check_seconds": round(checked["seconds"], 1),
        "check_bucket_reads": reads,
        "check_ms_per_bucket_read": round(checked["seconds"] / max(1, reads) * 1000, 3),
        "check_peak_rss_bytes": checked["peak_rss_bytes"],
        "check_most_ids_held": largest_bucket,
        "check_share_of_ids_held": largest_bucket / total_ids,
        "check_passed": checked["passed"],
        "duplicates_planted": PLANTED_DUPLICATES,
        "duplicates_reported": int(duplicated.group(1)) if duplicated else 0,
        "check_detail": checked["detail"],
    }


def main(argv: list[str] | None = None) -> None:
    from nightshard.planning.sharding import id_index_buckets

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=1024)
    parser.add_argument("--ids-per-shard", type=int, default=976_563)  # 1,024 shards: 1,000,000,512 ids
    parser.add_argument("--buckets", type=int, help="default: what plan chooses for this many ids")
    parser.add_argument("--processes", type=int, default=2, help="index writers at once (workers)")
    parser.add_argument("--workdir", help="where inputs and indexes go (deleted after); default: a temp dir")
    parser.add_argument("--output", help="also write the JSON here")
    arguments = parser.parse_args(argv)
    if arguments.shards < 3:
        parser.error("--shards must be at least 3 (the planted duplicates span three shards)")
    buckets = arguments.buckets or id_index_buckets(arguments.shards * arguments.ids_per_shard)
    workdir = tempfile.mkdtemp(prefix="unique-ids-", dir=arguments.workdir)
    try:
        report = run(arguments.shards, arguments.ids_per_shard, buckets, workdir, arguments.processes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
