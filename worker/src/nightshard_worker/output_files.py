"""The shard's final files: committed chunks merged in order, published atomically, hashed."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from nightshard_worker import storage
from nightshard_worker.checkpoint import read_chunk

QUARANTINE_FIELDS = (
    pa.field("reason", pa.string()),
    pa.field("source_file", pa.string()),
    pa.field("row_group", pa.int32()),
    pa.field("row_in_group", pa.int32()),
)


def output_schema(id_field: pa.Field, output_fields: tuple[pa.Field, ...]) -> pa.Schema:
    return pa.schema([id_field, *output_fields])


def quarantine_schema(id_field: pa.Field) -> pa.Schema:
    return pa.schema([id_field, *QUARANTINE_FIELDS])


def merge_chunks(chunk_uris: list[str], schema: pa.Schema, destination: str) -> tuple[int, str]:
    """Concatenate chunks (one at a time: memory stays at one chunk) into `destination`.

    Returns (bytes, sha256) of the published file.
    """
    with storage.staged_file(destination) as local_path:
        with pq.ParquetWriter(local_path, schema) as parquet_writer:
            for uri in chunk_uris:
                parquet_writer.write_table(read_chunk(uri).cast(schema))
        size = os.path.getsize(local_path)
        digest = storage.sha256_of_local_file(local_path)
    return size, digest
