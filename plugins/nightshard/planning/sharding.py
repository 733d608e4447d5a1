"""Planning: read Parquet footers only, check the schema, cut deterministic row-balanced shards.

`data_files`, `read_footers` and `read_footer` do the I/O (a listing and footers, never data pages);
the rest are pure and table-tested. A shard is a run of whole row groups, so a worker reads exactly what the
planner promised and the id of a shard depends only on what it holds.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import posixpath
from dataclasses import dataclass

from nightshard import storage
from nightshard.failures import PermanentError
from nightshard_worker.contract import InputSlice
from nightshard_worker.input_requirements import schema_problem


class PlanError(PermanentError):
    """The partition cannot be planned: the message says what, where and what to do."""


@dataclass(frozen=True)
class FileFooter:
    path: str
    size_bytes: int
    row_group_rows: tuple[int, ...]
    columns: dict[str, str]  # column name -> Arrow type string

    @property
    def rows(self) -> int:
        return sum(self.row_group_rows)


@dataclass(frozen=True)
class PlannedShard:
    index: int
    slices: tuple[InputSlice, ...]
    rows: int


# One ranged read fetches the footer of almost any file: a footer holds ~100-300 bytes per column
# chunk, so 64 KiB covers e.g. 20 columns x 10 row groups; a longer footer costs one more read.
FOOTER_TAIL_BYTES = 64 << 10
PARQUET_MAGIC = b"PAR1"


def data_files(partition_uri: str) -> list[tuple[str, int]]:
    """(URI, bytes) of a partition's Parquet files; hidden files (_SUCCESS, _manifest, .crc) are not data."""
    return [
        (uri, size)
        for uri, size in storage.list_file_sizes(partition_uri)
        if not posixpath.basename(uri).startswith(("_", ".")) and uri.endswith(".parquet")
    ]


def read_footers(partition_uri: str, concurrency: int = storage.DEFAULT_CONCURRENCY) -> list[FileFooter]:
    """The footers of a partition's files, `concurrency` files in flight; data pages are never read.

    Memory grows with files and row groups, never with rows; files with the same schema share one
    column dict.
    """
    schemas: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def shared_columns(columns: dict[str, str]) -> dict[str, str]:
        return schemas.setdefault(tuple(columns.items()), columns)

    footers = []
    for footer in storage.map_bounded(lambda entry: read_footer(*entry), data_files(partition_uri), concurrency):
        footers.append(FileFooter(footer.path, footer.size_bytes, footer.row_group_rows,
                                  shared_columns(footer.columns)))
    return footers


def read_footer(uri: str, size_bytes: int) -> FileFooter:
    """One file's footer from its tail: one ranged read, two for a footer over FOOTER_TAIL_BYTES."""
    import pyarrow as pa  # imported here: DAG parsing must stay free of pyarrow
    import pyarrow.parquet as pq

    # Reading can fail for a passing reason (network, permissions being fixed): that stays retryable.
    # Bytes that are read but are not a Parquet footer fail the same way every time.
    tail = storage.read_tail(uri, size_bytes, FOOTER_TAIL_BYTES)
    try:
        if len(tail) < 12 or tail[-4:] != PARQUET_MAGIC:
            raise ValueError("no Parquet magic at the end of the file")
        needed = int.from_bytes(tail[-8:-4], "little") + 8
        if needed > len(tail):
            if needed > size_bytes:
                raise ValueError(f"the footer claims {needed} bytes of a {size_bytes}-byte file")
            tail = storage.read_tail(uri, size_bytes, needed)
        metadata = pq.ParquetFile(pa.BufferReader(tail)).metadata
        schema = metadata.schema.to_arrow_schema()
    except (ValueError, pa.ArrowException) as error:  # damaged or not Parquet
        raise PlanError(
            f"{uri}: cannot read the Parquet footer ({error}). The file is truncated or not "
            "Parquet: ask the upstream job to rewrite the partition, then re-run"
        ) from None
    return FileFooter(
        path=uri,
        size_bytes=size_bytes,
        row_group_rows=tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)),
        columns={field.name: str(field.type) for field in schema},
    )


def check_schema(footers: list[FileFooter], required: dict[str, str], id_column: str) -> None:
    """Every file must hold the id column and each required column with a usable type."""
    for footer in footers:
        problem = schema_problem(footer.columns, required, id_column)
        if problem:
            raise PlanError(f"{footer.path}: {problem}. Fix the upstream table or the pipeline config")


def cut_shards(footers: list[FileFooter], target_rows: int, max_shards: int | None = None) -> list[PlannedShard]:
    """Split row groups, in file order, into ceil(total / target_rows) shards (at most max_shards) of near-equal rows.

    Each cut falls on the row-group boundary closest to the ideal even split, so shards balance
    by rows even when row groups are uneven, and every shard holds at least one row group.
    """
    if target_rows < 1:
        raise PlanError(f"shard size must be at least 1 row, got {target_rows}")
    units = [
        (footer.path, group, rows)
        for footer in sorted(footers, key=lambda f: f.path)
        for group, rows in enumerate(footer.row_group_rows)
        if rows > 0
    ]
    total = sum(rows for _, _, rows in units)
    if total == 0:
        return []
    shard_count = min(len(units), max(1, math.ceil(total / target_rows)), max_shards or len(units))
    boundaries = _closest_boundaries(units, total, shard_count)
    shards, start = [], 0
    for index, end in enumerate(boundaries):
        shards.append(PlannedShard(index=index, slices=_as_slices(units[start:end]), rows=_rows(units[start:end])))
        start = end
    return shards


# A bucket of the id index is what one process holds at a time when validate checks uniqueness:
# 5M ids, ~40 MB as int64 and ~80 MB more to sort them, whatever the partition holds; 201 buckets
# for a billion ids, ~205k bucket reads at 1,024 shards (bench.unique_ids).
IDS_PER_BUCKET = 5_000_000


def id_index_buckets(input_rows: int) -> int:
    """How many hash buckets the workers index their ids into, so a bucket holds <= IDS_PER_BUCKET ids."""
    return max(1, math.ceil(input_rows / IDS_PER_BUCKET))


@dataclass(frozen=True)
class ShardSizing:
    """The shard size the plan uses, and why: asked for, or grown to fit the orchestrator."""

    input_rows: int
    asked_rows: int
    shard_rows: int
    max_mapped_tasks: int

    @property
    def grown(self) -> bool:
        return self.shard_rows != self.asked_rows

    def describe(self) -> str:
        wanted = math.ceil(self.input_rows / self.asked_rows) if self.input_rows else 0
        if not self.grown:
            return (f"sharding: {self.asked_rows} rows per shard as asked, about {wanted} shards "
                    f"(within [core] max_map_length {self.max_mapped_tasks})")
        return (f"sharding: {self.asked_rows} rows per shard would cut {wanted} shards, above [core] "
                f"max_map_length {self.max_mapped_tasks} (Airflow refuses to map more tasks): shards grow to "
                f"{self.shard_rows} rows, at most {self.max_mapped_tasks} shards. To keep smaller shards, raise "
                "[core] max_map_length on purpose (and parallelism, pools and the infer limits with it)")

    def as_dict(self) -> dict[str, int | bool]:
        return {"asked_rows": self.asked_rows, "shard_rows": self.shard_rows,
                "max_mapped_tasks": self.max_mapped_tasks, "grown": self.grown}


def size_shards(input_rows: int, asked_rows: int, max_mapped_tasks: int) -> ShardSizing:
    """The asked shard size, grown just enough that the shards fit in max_mapped_tasks mapped tasks."""
    if max_mapped_tasks < 1:
        raise PlanError(f"[core] max_map_length is {max_mapped_tasks}: Airflow could not map a single shard")
    shard_rows = asked_rows
    if input_rows > asked_rows * max_mapped_tasks:
        shard_rows = math.ceil(input_rows / max_mapped_tasks)
    return ShardSizing(input_rows, asked_rows, shard_rows, max_mapped_tasks)


def startup_share(startup_seconds: float, shard_rows: int, rows_per_second: float) -> float:
    """Share of a shard's GPU time spent starting (pod, image, model load) rather than scoring."""
    scoring = shard_rows / rows_per_second if rows_per_second > 0 else 0.0
    total = startup_seconds + scoring
    return startup_seconds / total if total > 0 else 0.0


def startup_share_line(startup_seconds: float, shard_rows: int, rows_per_second: float | None) -> str:
    """The plan-log line that says how much of the GPU time start-up costs at the chosen shard size."""
    if not rows_per_second:
        # without a throughput, say what throughput keeps start-up under a tenth
        return (f"start-up: sharding.startup_seconds {startup_seconds:g} s per shard; no throughput from earlier "
                f"runs yet, so its share is unknown: it stays under 10% while a shard of {shard_rows} rows takes "
                f">= {9 * startup_seconds:g} s to score (<= {shard_rows / (9 * startup_seconds):.3g} rows/s)")
    share = startup_share(startup_seconds, shard_rows, rows_per_second)
    advice = "" if share <= 0.1 else (
        f"; more than a tenth: raise sharding.target_rows to >= {math.ceil(9 * startup_seconds * rows_per_second)} "
        "rows to bring it under 10%")
    return (f"start-up: {share:.1%} of GPU time ({startup_seconds:g} s per shard of {shard_rows} rows scored in "
            f"{shard_rows / rows_per_second:.0f} s at {rows_per_second:.0f} rows/s){advice}")


def shard_id(shard: PlannedShard, *, pipeline: str, ds: str, model_version: str, partition_uri: str) -> str:
    """Stable across reruns: a function of what the shard holds, not of when it ran."""
    content = {
        "pipeline": pipeline,
        "ds": ds,
        "model_version": model_version,
        "slices": [
            [posixpath.relpath(s.path, partition_uri) if "://" not in s.path else s.path, list(s.row_groups), s.rows]
            for s in shard.slices
        ],
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{shard.index:05d}-{digest}"


def _closest_boundaries(units: list[tuple[str, int, int]], total: int, shard_count: int) -> list[int]:
    cumulative, running = [], 0
    for _, _, rows in units:
        running += rows
        cumulative.append(running)
    boundaries, previous = [], 0
    for shard in range(1, shard_count):
        ideal = total * shard / shard_count
        # leave at least one unit for each shard still to come
        lowest, highest = previous + 1, len(units) - (shard_count - shard)
        crossing = bisect.bisect_left(cumulative, ideal) + 1  # first end whose rows reach the ideal
        candidates = {min(max(end, lowest), highest) for end in (crossing - 1, crossing)}
        best = min(candidates, key=lambda end: (abs(cumulative[end - 1] - ideal), end))
        boundaries.append(best)
        previous = best
    boundaries.append(len(units))
    return boundaries


def _as_slices(units: list[tuple[str, int, int]]) -> tuple[InputSlice, ...]:
    slices: list[InputSlice] = []
    for path, group, rows in units:
        if slices and slices[-1].path == path:
            last = slices[-1]
            slices[-1] = InputSlice(path=path, row_groups=(*last.row_groups, group), rows=last.rows + rows)
        else:
            slices.append(InputSlice(path=path, row_groups=(group,), rows=rows))
    return tuple(slices)


def _rows(units: list[tuple[str, int, int]]) -> int:
    return sum(rows for _, _, rows in units)
