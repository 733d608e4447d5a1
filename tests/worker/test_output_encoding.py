"""The merged output's Parquet encoding: dictionaries only where values repeat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from nightshard_worker import output_files
from nightshard_worker.handlers.image_classification import ImageClassificationHandler
from nightshard_worker.handlers.text_embedding import TextEmbeddingHandler

ID = pa.field("id", pa.int64())


def write_chunks(folder: Path, table: pa.Table, pieces: int) -> list[str]:
    uris = []
    for index, piece in enumerate(np.array_split(np.arange(table.num_rows), pieces)):
        path = folder / f"output-{index:06d}.arrow"
        with ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table.take(pa.array(piece)))
        uris.append(str(path))
    return uris


def dictionary_encoded(path: Path) -> dict[str, bool]:
    metadata = pq.ParquetFile(path).metadata
    found = {}
    for group in range(metadata.num_row_groups):
        for index in range(metadata.num_columns):
            column = metadata.row_group(group).column(index)
            top = column.path_in_schema.split(".")[0]
            found[top] = found.get(top, False) or any("DICTIONARY" in e for e in column.encodings)
    return found


def test_ids_and_float_outputs_are_plain_and_repeating_outputs_use_dictionaries(tmp_path: Path) -> None:
    rows = 3000
    rng = np.random.default_rng(0)
    schema = output_files.output_schema(ID, ImageClassificationHandler.output_fields)
    table = pa.table({"id": np.arange(rows), "label": rng.integers(0, 10, rows).astype(np.int32),
                      "confidence": rng.random(rows, dtype=np.float32)}, schema=schema)
    destination = tmp_path / "part.parquet"

    output_files.merge_chunks(write_chunks(tmp_path, table, 3), schema, str(destination))

    assert pq.read_table(destination).equals(table)
    assert dictionary_encoded(destination) == {"id": False, "label": True, "confidence": False}


def test_embeddings_are_plain_and_quarantine_reasons_use_dictionaries(tmp_path: Path) -> None:
    rows, width = 200, TextEmbeddingHandler.output_fields[0].type.list_size
    schema = output_files.output_schema(ID, TextEmbeddingHandler.output_fields)
    values = pa.array(np.random.default_rng(1).random(rows * width, dtype=np.float32))
    embeddings = pa.table({"id": np.arange(rows), "embedding": pa.FixedSizeListArray.from_arrays(values, width),
                           "truncated": np.arange(rows) % 7 == 0}, schema=schema)
    (tmp_path / "out").mkdir()
    output_files.merge_chunks(write_chunks(tmp_path / "out", embeddings, 2), schema, str(tmp_path / "part.parquet"))
    assert dictionary_encoded(tmp_path / "part.parquet") == {"id": False, "embedding": False, "truncated": False}

    schema = output_files.quarantine_schema(ID)
    quarantine = pa.table({"id": np.arange(rows), "reason": ["text is null"] * rows,
                           "source_file": ["gs://b/in/part-0.parquet"] * rows,
                           "row_group": np.zeros(rows, np.int32), "row_in_group": np.arange(rows, dtype=np.int32)},
                          schema=schema)
    (tmp_path / "q").mkdir()
    output_files.merge_chunks(write_chunks(tmp_path / "q", quarantine, 2), schema, str(tmp_path / "quarantine.parquet"))
    encoded = dictionary_encoded(tmp_path / "quarantine.parquet")
    assert encoded["id"] is False and encoded["reason"] and encoded["source_file"]


def test_merged_bytes_depend_on_the_rows_not_on_how_commits_chunked_them(tmp_path: Path) -> None:
    """A rerun, or a resume after kill -9, commits other chunks; the published file must not change."""
    rows = 5000
    rng = np.random.default_rng(2)
    schema = output_files.output_schema(ID, ImageClassificationHandler.output_fields)
    table = pa.table({"id": np.arange(rows), "label": rng.integers(0, 10, rows).astype(np.int32),
                      "confidence": rng.random(rows, dtype=np.float32)}, schema=schema)
    digests, layouts = set(), set()
    for pieces in (1, 3, 7, 40):
        folder = tmp_path / f"chunks-{pieces}"
        folder.mkdir()
        destination = folder / "part.parquet"
        size, digest = output_files.merge_chunks(write_chunks(folder, table, pieces), schema, str(destination),
                                                 row_group_rows=1024)
        metadata = pq.ParquetFile(destination).metadata
        layouts.add(tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)))
        digests.add(digest)
        assert pq.read_table(destination).equals(table) and size == destination.stat().st_size
    assert layouts == {(1024, 1024, 1024, 1024, 904)}
    assert len(digests) == 1
