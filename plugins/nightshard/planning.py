"""Planning: read Parquet footers only, check the schema, cut deterministic row-balanced shards.

`read_footers` is the only function here that does I/O (footers, never data pages); the rest are
pure and table-tested. A shard is a run of whole row groups, so a worker reads exactly what the
planner promised and the id of a shard depends only on what it holds.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import posixpath
from dataclasses import dataclass

from nightshard_worker.contract import InputSlice
from nightshard_worker.input_requirements import arrow_type_matches_kind

from nightshard import storage
from nightshard.failures import PermanentError


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


def data_files(partition_uri: str) -> list[str]:
    """Parquet files of a partition; hidden files (_SUCCESS, _manifest, .crc) are not data."""
    return [
        uri
        for uri in storage.list_files(partition_uri)
        if not posixpath.basename(uri).startswith(("_", ".")) and uri.endswith(".parquet")
    ]


def read_footers(partition_uri: str) -> list[FileFooter]:
    import pyarrow as pa  # imported here: DAG parsing must stay free of pyarrow
    import pyarrow.parquet as pq

    footers = []
    for uri in data_files(partition_uri):
        fs, path = storage.filesystem(uri)
        # Opening can fail for a passing reason (network, permissions being fixed): that stays retryable.
        # A file that opens but is not Parquet fails the same way every time.
        with fs.open(path, "rb") as handle:
            try:
                metadata = pq.ParquetFile(handle).metadata
                schema = metadata.schema.to_arrow_schema()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # damaged or not Parquet
                raise PlanError(
                    f"{uri}: cannot read the Parquet footer ({error}). The file is truncated or not "
                    "Parquet: ask the upstream job to rewrite the partition, then re-run"
                ) from None
        footers.append(
            FileFooter(
                path=uri,
                size_bytes=int(fs.size(path)),
                row_group_rows=tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)),
                columns={field.name: str(field.type) for field in schema},
            )
        )
    return footers


def check_schema(footers: list[FileFooter], required: dict[str, str], id_column: str) -> None:
    """Every file must hold the id column and each required column with a usable type."""
    needed = {id_column: "any", **required}
    for footer in footers:
        for column, kind in needed.items():
            if column not in footer.columns:
                raise PlanError(
                    f"{footer.path}: column '{column}' is missing; the model needs {sorted(needed)}. "
                    f"Found {sorted(footer.columns)}. Fix the upstream table or the pipeline config"
                )
            if not arrow_type_matches_kind(footer.columns[column], kind):
                raise PlanError(
                    f"{footer.path}: column '{column}' has type {footer.columns[column]}, the model needs "
                    f"a {kind} column. Cast it upstream or change the pipeline config"
                )


def check_unique_ids(footers: list[FileFooter], id_column: str, examples: int = 3) -> None:
    """Each id must appear once in the partition; reads only the id column.

    A duplicated id would be scored twice and published twice, which downstream joins turn into
    silently doubled rows, so the run stops here and names where the duplicates are.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = []
    for footer in footers:
        fs, path = storage.filesystem(footer.path)
        with fs.open(path, "rb") as handle:
            columns.append(pq.read_table(handle, columns=[id_column]).column(id_column))
    if not columns:
        return
    ids = pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=columns[0].type)
    if ids.null_count:
        where = _locate(footers, columns, pc.is_null(ids), examples)
        raise PlanError(
            f"column '{id_column}' holds {ids.null_count} null ids ({where}). Every row needs an id: "
            "fix the upstream table"
        )
    counts = pc.value_counts(ids)
    duplicated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(duplicated):
        where = _locate(footers, columns, pc.is_in(ids, value_set=duplicated), examples)
        raise PlanError(
            f"column '{id_column}' has {len(duplicated)} duplicated ids, e.g. {duplicated[:examples].to_pylist()} "
            f"({where}). Each id must appear once or it would be scored and published twice: deduplicate "
            "upstream, or set input.check_unique_ids: false if duplicates are intended"
        )


def _locate(footers: list[FileFooter], columns: list, mask, examples: int) -> str:
    """'file row N' for the first few rows where mask is true."""
    import pyarrow.compute as pc

    places, offset = [], 0
    flat_mask = mask.combine_chunks() if hasattr(mask, "combine_chunks") else mask
    for footer, column in zip(footers, columns):
        local = flat_mask.slice(offset, len(column))
        for row in pc.indices_nonzero(local).to_pylist()[: examples - len(places)]:
            places.append(f"{footer.path} row {row}")
        offset += len(column)
        if len(places) >= examples:
            break
    return "; ".join(places)


def cut_shards(footers: list[FileFooter], target_rows: int) -> list[PlannedShard]:
    """Split row groups, in file order, into ceil(total / target_rows) shards of near-equal rows.

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
    shard_count = min(len(units), max(1, math.ceil(total / target_rows)))
    boundaries = _closest_boundaries(units, total, shard_count)
    shards, start = [], 0
    for index, end in enumerate(boundaries):
        shards.append(PlannedShard(index=index, slices=_as_slices(units[start:end]), rows=_rows(units[start:end])))
        start = end
    return shards


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
