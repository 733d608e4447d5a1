"""Uniqueness of the run's ids, checked one hash bucket at a time from the workers' id indexes.

Each worker wrote its shard's ids, bucketed by hash (nightshard_worker.id_index). Equal ids always
share a bucket, so reading bucket b of every shard and finding repeats there finds every duplicate;
the largest thing held in memory is one bucket's ids (about input rows / buckets), never the column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nightshard import storage
from nightshard.failures import ExplainedError
from nightshard.validation.rules import Check
from nightshard_worker.id_index import BUCKETS_METADATA_KEY, index_uri

EXAMPLES = 3  # duplicated ids named in the message; the rest are counted


@dataclass(frozen=True)
class ShardIndex:
    shard_id: str
    uri: str
    row_groups: dict[int, int]  # bucket -> row group of the index file


def check_unique_ids(id_index_dir: str, shard_ids: list[str], *, buckets: int, id_column: str,
                     concurrency: int = storage.DEFAULT_CONCURRENCY) -> Check:
    """One Check: every id of the run once, no null id; the detail names ids, shards, files and rows."""
    name = "every id appears once, none is null"
    try:
        indexes = list(storage.map_bounded(lambda shard: _open_index(id_index_dir, shard, buckets), shard_ids,
                                           concurrency))
    except IndexMissing as error:
        return Check(name, False, str(error))
    duplicated_total, null_total = 0, 0
    examples: list[str] = []
    largest_bucket = 0
    for bucket in range(buckets):
        ids, shards = _read_bucket(indexes, bucket, concurrency)
        largest_bucket = max(largest_bucket, len(ids))
        if not len(ids):
            continue
        null_total += ids.null_count
        duplicated = _duplicated_values(ids)
        duplicated_total += len(duplicated)
        if (len(duplicated) or ids.null_count) and len(examples) < EXAMPLES:
            examples += _locate(shards, bucket, duplicated, EXAMPLES - len(examples), concurrency)
    if duplicated_total or null_total:
        what = []
        if duplicated_total:
            what.append(f"{duplicated_total} duplicated ids")
        if null_total:
            what.append(f"{null_total} null ids")
        return Check(name, False, (
            f"column '{id_column}' has {' and '.join(what)}: {'; '.join(examples)}. Each id must appear once "
            "or it would be published twice (downstream joins double those rows): deduplicate upstream, or set "
            "input.check_unique_ids: false if duplicates are intended"))
    return Check(name, True, f"{len(shard_ids)} shards, {buckets} hash buckets, at most {largest_bucket} ids "
                             "held at once")


class IndexMissing(ExplainedError):
    """A shard's id index is absent or from another plan: the uniqueness check cannot read it."""


def _open_index(id_index_dir: str, shard_id: str, buckets: int) -> ShardIndex:
    import pyarrow.parquet as pq

    uri = index_uri(id_index_dir, shard_id)
    if not storage.exists(uri):
        raise IndexMissing(f"shard {shard_id} wrote no id index ({uri}); its worker predates the index or "
                           "was interrupted after its result.", next_step="clear its infer task and validate")
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).schema_arrow.metadata or {}
    mapping = json.loads(metadata[BUCKETS_METADATA_KEY])
    if mapping["buckets"] != buckets:
        raise IndexMissing(f"shard {shard_id}'s id index at {uri} has {mapping['buckets']} buckets, the plan "
                           f"{buckets}: it was written for another plan.", next_step="re-run with reprocess=all")
    return ShardIndex(shard_id, uri, {int(b): group for b, group in mapping["row_groups"].items()})


def _read_row_group(index: ShardIndex, bucket: int, columns: list[str] | None):
    import pyarrow.parquet as pq

    fs, path = storage.filesystem(index.uri)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).read_row_group(index.row_groups[bucket], columns=columns)


def _read_bucket(indexes: list[ShardIndex], bucket: int, concurrency: int) -> tuple[Any, list[ShardIndex]]:
    """The ids of one bucket across all shards, and the shards that hold any."""
    import pyarrow as pa

    holding = [index for index in indexes if bucket in index.row_groups]
    tables = list(storage.map_bounded(lambda index: _read_row_group(index, bucket, ["id"]), holding, concurrency))
    if not tables:
        return pa.array([]), holding
    return pa.concat_tables(tables, promote_options="permissive").column("id").combine_chunks(), holding


def _duplicated_values(ids: Any) -> Any:
    """Each id that occurs more than once, once. Sorted neighbours, not a hash count: on a bucket of
    5M int64 ids pyarrow's value_counts peaked at ~900 MB and took 3.0 s; sorting takes ~80 MB and 1.0 s."""
    import pyarrow.compute as pc

    present = ids.drop_null()
    ordered = present.take(pc.sort_indices(present))
    repeats = ordered[1:].filter(pc.equal(ordered[1:], ordered[:-1]))
    return pc.unique(repeats)


def _locate(holding: list[ShardIndex], bucket: int, duplicated: Any, limit: int,
            concurrency: int) -> list[str]:
    """'id X in shard S (file row group G row R), shard T (...)' for the first `limit` bad ids of a bucket."""
    import pyarrow.compute as pc

    wanted = duplicated[:limit]
    places: dict[Any, list[str]] = {}
    tables = storage.map_bounded(lambda index: (index, _read_row_group(index, bucket, None)), holding, concurrency)
    for index, table in tables:
        mask = pc.or_(pc.is_in(table.column("id"), value_set=wanted), pc.is_null(table.column("id")))
        for row in table.filter(mask).to_pylist():
            places.setdefault(row["id"], []).append(
                f"shard {index.shard_id} ({row['file']} row group {row['row_group']} row {row['row']})")
    return [f"id {_shown(value)} in {', '.join(where)}" for value, where in list(places.items())[:limit]]


def _shown(value: Any) -> str:
    return "null" if value is None else repr(value)
