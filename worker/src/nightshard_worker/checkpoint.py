"""Committed chunks and the progress record: what survives a kill -9 and lets a retry resume.

Layout of `spec.checkpoint_dir`:
  output-<first>-<end>.arrow        scored rows of units [first, end)
  quarantine-<first>-<end>.arrow    quarantined rows of the same units
  progress.json                     the record: fingerprint, units committed, counts, chunk list,
                                    and the seconds each attempt ran (the attempt ledger, for cost)

Chunks are Arrow IPC files, not Parquet: they live only until the merge, and IPC writes the
in-memory columns as they are, where Parquet encoding cost a commit several milliseconds, the
writer's whole budget on a cheap model. The merge encodes Parquet once. Chunks of older workers
(`.parquet`, named in their record) are still read, so an upgrade mid-retry resumes.

A chunk is written (atomically) before the record that names it, so the record never points at a
missing chunk. A chunk the record does not name is an orphan of a killed attempt and is deleted.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from nightshard_worker import storage

log = logging.getLogger(__name__)

PROGRESS_RECORD = "progress.json"


@dataclass(kw_only=True)
class ChunkRecord:
    first_unit: int
    end_unit: int
    output_file: str
    quarantine_file: str
    rows_out: int
    rows_quarantined: int


@dataclass(kw_only=True)
class Progress:
    fingerprint: str
    units_committed: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    histogram_counts: list[int] = field(default_factory=list)
    chunks: list[ChunkRecord] = field(default_factory=list)
    attempts: int = 0
    # Seconds each attempt ran, as of its last commit: a killed attempt's time is billed too.
    attempt_seconds: list[float] = field(default_factory=list)

    @property
    def rows_done(self) -> int:
        return self.rows_out + self.rows_quarantined


class Checkpoint:
    def __init__(self, *, directory: str, fingerprint: str, histogram_bins: int,
                 attempt_started: float | None = None):
        self.directory = directory
        self.attempt_started = time.monotonic() if attempt_started is None else attempt_started
        self.fingerprint = fingerprint
        self.histogram_bins = histogram_bins
        self.progress = Progress(fingerprint=fingerprint, histogram_counts=[0] * histogram_bins)

    def start(self) -> Progress:
        """Load the record of an earlier attempt with this spec (or start fresh) and count the attempt."""
        storage.make_dirs(self.directory)
        record_uri = storage.join(self.directory, PROGRESS_RECORD)
        if storage.exists(record_uri):
            loaded = _parse(storage.read_bytes(record_uri))
            if loaded is None or loaded.fingerprint != self.fingerprint:
                log.warning("checkpoint %s belongs to another spec (or is unreadable): discarding it, "
                            "starting the shard from the first row group", self.directory)
                storage.remove_tree(self.directory)
                storage.make_dirs(self.directory)
            else:
                self.progress = loaded
                log.info("resuming after %d committed row groups (%d rows) from %s",
                         loaded.units_committed, loaded.rows_done, self.directory)
        self._delete_orphans()
        self.progress.attempts += 1
        self.progress.attempt_seconds.append(0.0)
        self._save()
        return self.progress

    def commit(self, first_unit: int, end_unit: int, output: pa.Table, quarantine: pa.Table,
               histogram_counts: list[int]) -> None:
        """Make units [first_unit, end_unit) durable: chunk files first, then the record."""
        if first_unit != self.progress.units_committed:
            raise RuntimeError(f"commit of units {first_unit}.. after {self.progress.units_committed}: out of order")
        chunk = ChunkRecord(first_unit=first_unit, end_unit=end_unit,
                            output_file=f"output-{first_unit:06d}-{end_unit:06d}.arrow",
                            quarantine_file=f"quarantine-{first_unit:06d}-{end_unit:06d}.arrow",
                            rows_out=output.num_rows, rows_quarantined=quarantine.num_rows)
        storage.write_bytes_atomic(storage.join(self.directory, chunk.output_file), _ipc_bytes(output))
        storage.write_bytes_atomic(storage.join(self.directory, chunk.quarantine_file), _ipc_bytes(quarantine))
        progress = self.progress
        progress.chunks.append(chunk)
        progress.units_committed = end_unit
        progress.rows_out += chunk.rows_out
        progress.rows_quarantined += chunk.rows_quarantined
        progress.histogram_counts = [a + b for a, b in zip(progress.histogram_counts, histogram_counts)]
        self._save()

    def output_chunks(self) -> list[str]:
        return [storage.join(self.directory, chunk.output_file) for chunk in self.progress.chunks]

    def quarantine_chunks(self) -> list[str]:
        return [storage.join(self.directory, chunk.quarantine_file) for chunk in self.progress.chunks]

    def remove(self) -> None:
        storage.remove_tree(self.directory)

    def earlier_attempts_seconds(self) -> float:
        """Seconds the earlier attempts of this spec ran (each as of its last commit)."""
        return round(sum(self.progress.attempt_seconds[:-1]), 3)

    def _save(self) -> None:
        if self.progress.attempt_seconds:
            self.progress.attempt_seconds[-1] = round(time.monotonic() - self.attempt_started, 3)
        document = json.dumps(asdict(self.progress), indent=2, sort_keys=True).encode()
        storage.write_bytes_atomic(storage.join(self.directory, PROGRESS_RECORD), document)

    def _delete_orphans(self) -> None:
        named = {PROGRESS_RECORD}
        for chunk in self.progress.chunks:
            named |= {chunk.output_file, chunk.quarantine_file}
        for name in storage.list_names(self.directory):
            if name not in named:
                log.info("deleting %s from %s: not in the progress record (left by a killed attempt)",
                         name, self.directory)
                storage.remove(storage.join(self.directory, name))


def _parse(raw: bytes) -> Progress | None:
    try:
        document = json.loads(raw)
        chunks = [ChunkRecord(**chunk) for chunk in document.pop("chunks")]
        return Progress(chunks=chunks, **document)
    except (ValueError, TypeError, KeyError):
        return None


def read_chunk(uri: str) -> pa.Table:
    """A committed chunk: Arrow IPC, or Parquet from a checkpoint an older worker left."""
    with storage.open_read(uri) as handle:
        if uri.endswith(".parquet"):
            return pq.read_table(handle)
        return ipc.open_file(handle).read_all()


def _ipc_bytes(table: pa.Table) -> memoryview:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return memoryview(sink.getvalue())
