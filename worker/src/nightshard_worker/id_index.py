"""The shard's ids by hash bucket: what validate needs to prove every id of the run appears once.

A worker writes one Parquet file per shard, `<id_index_dir>/part-<shard>.parquet`, holding every
input row's id with where it came from (file, row group, row), sorted by bucket, one row group per
non-empty bucket; the footer's key-value metadata maps bucket -> row group. Validate then reads one
bucket of every shard at a time (nightshard.validation.id_check), so no process ever holds more than a bucket's
share of the run's ids. The bucket of an id depends only on its value, so equal ids meet in one bucket.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nightshard_worker import storage
from nightshard_worker.contract import ShardSpec, shard_file_stem

BUCKETS_METADATA_KEY = b"nightshard.id_buckets"


def index_uri(id_index_dir: str, shard_id: str) -> str:
    return storage.join(id_index_dir, f"{shard_file_stem(shard_id)}.parquet")


def bucket_of(ids: pa.Array, buckets: int) -> np.ndarray:
    """The bucket of each id: a 64-bit hash of its value modulo `buckets`; nulls go to bucket 0."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    if pa.types.is_integer(ids.type):
        values = pc.fill_null(ids, 0).cast(pa.int64()).to_numpy().view(np.uint64)
        hashes = _splitmix64(values)
    else:  # strings, binary, dates...: the value's canonical text, hashed per row
        texts = pc.fill_null(ids.cast(pa.string()) if not pa.types.is_binary(ids.type) else ids, "").to_pylist()
        hashes = np.fromiter(
            (int.from_bytes(hashlib.blake2b(t if isinstance(t, bytes) else t.encode(), digest_size=8).digest(),
                            "little") for t in texts),
            dtype=np.uint64, count=len(texts))
    result = (hashes % np.uint64(buckets)).astype(np.int64)
    if ids.null_count:
        result[pc.is_null(ids).to_numpy(zero_copy_only=False)] = 0
    return result


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: consecutive ids spread evenly over the buckets."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def read_input_ids(spec: ShardSpec) -> pa.Table:
    """id, file, row_group, row of every input row of the shard; only the id column is read."""
    parts = []
    for input_slice in spec.inputs:
        with storage.open_read(input_slice.path) as handle:
            parquet = pq.ParquetFile(handle)
            for group in input_slice.row_groups:
                ids = parquet.read_row_group(group, columns=[spec.id_column]).column(spec.id_column)
                rows = len(ids)
                parts.append(pa.table({
                    "id": ids,
                    "file": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)),
                                                           pa.array([input_slice.path])),
                    "row_group": pa.array(np.full(rows, group, np.int32)),
                    "row": pa.array(np.arange(rows, dtype=np.int32)),
                }))
    return pa.concat_tables(parts, promote_options="permissive").combine_chunks()


def write_index(spec: ShardSpec) -> str:
    """Write the shard's id index (see the module docstring); returns its URI."""
    table = read_input_ids(spec)
    buckets = bucket_of(table.column("id").combine_chunks(), spec.id_index_buckets)
    order = np.argsort(buckets, kind="stable")
    table = table.take(pa.array(order))
    sorted_buckets = buckets[order]
    present, starts, counts = np.unique(sorted_buckets, return_index=True, return_counts=True)
    mapping = {"buckets": spec.id_index_buckets,
               "row_groups": {str(int(b)): group for group, b in enumerate(present)}}
    schema = table.schema.with_metadata({BUCKETS_METADATA_KEY: json.dumps(mapping).encode()})
    uri = index_uri(spec.id_index_dir, spec.shard_id)
    with storage.staged_file(uri) as local_path:
        with pq.ParquetWriter(local_path, schema) as writer:
            for start, count in zip(starts, counts):
                writer.write_table(table.slice(int(start), int(count)).replace_schema_metadata(schema.metadata),
                                   row_group_size=int(count))
    return uri
