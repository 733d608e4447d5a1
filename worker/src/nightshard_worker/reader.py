"""Load stage: the shard's row groups, one at a time, only the columns the model needs."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from nightshard_worker import storage
from nightshard_worker.contract import ShardSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.input_requirements import arrow_type_matches_kind
from nightshard_worker.metrics import StageClock
from nightshard_worker.stage_queue import END, StageFailure, put_unless_stopped


@dataclass(frozen=True)
class Unit:
    """One row group of one input file: the unit of reading, checkpointing and resuming."""

    index: int
    source_file: str
    row_group: int
    rows: int


@dataclass
class ReadUnit:
    unit: Unit
    table: pa.Table


def plan_units(spec: ShardSpec) -> list[Unit]:
    """The shard's row groups in spec order; unit indices are stable across attempts."""
    units = []
    for input_slice in spec.inputs:
        for row_group in input_slice.row_groups:
            units.append(Unit(index=len(units), source_file=input_slice.path, row_group=row_group, rows=-1))
    return units


def check_inputs(spec: ShardSpec, required_columns: dict[str, str]) -> tuple[pa.DataType, list[Unit]]:
    """Open every input's footer; return the id column's type and the units with their row counts.

    Fails with BadInputError naming the file (and the column, and what the model needs) when a file
    is unreadable, a row group is missing or a column is absent or of the wrong type.
    """
    id_type: pa.DataType | None = None
    units: list[Unit] = []
    needed = {spec.id_column: "any", **required_columns}
    for input_slice in spec.inputs:
        metadata = _read_footer(input_slice.path)
        schema = metadata.schema.to_arrow_schema()
        for column, kind in needed.items():
            if column not in schema.names:
                role = "the id column (spec.id_column)" if column == spec.id_column else f"a {kind} column"
                raise BadInputError(
                    f"input {input_slice.path} has no column {column!r}; the {spec.model.handler} handler "
                    f"needs {role} named {column!r} (needed: {_describe(needed)}); the file has: "
                    f"{', '.join(schema.names)}. Fix the model options or the input partition."
                )
            actual = schema.field(column).type
            if not arrow_type_matches_kind(str(actual), kind):
                raise BadInputError(
                    f"input {input_slice.path}: column {column!r} is {actual}, the {spec.model.handler} "
                    f"handler needs a {kind} column there"
                )
        this_id_type = schema.field(spec.id_column).type
        if id_type is not None and this_id_type != id_type:
            raise BadInputError(
                f"input {input_slice.path}: id column {spec.id_column!r} is {this_id_type}, "
                f"earlier inputs have {id_type}; one shard needs one id type"
            )
        id_type = this_id_type
        for row_group in input_slice.row_groups:
            if not 0 <= row_group < metadata.num_row_groups:
                raise BadInputError(
                    f"input {input_slice.path} has {metadata.num_row_groups} row groups, the spec asks "
                    f"for row group {row_group}: the partition changed since planning, re-plan the run"
                )
            units.append(Unit(len(units), input_slice.path, row_group, metadata.row_group(row_group).num_rows))
    if id_type is None:
        raise BadInputError(f"shard {spec.shard_id} has no inputs")
    return id_type, units


class ReaderThread(threading.Thread):
    """Reads units[start:] into `out` in order; stops early when `stop` is set."""

    def __init__(self, units: list[Unit], columns: list[str], out: queue.Queue,
                 stop: threading.Event, clock: StageClock):
        super().__init__(name="reader", daemon=True)
        self.units = units
        self.columns = columns
        self.out = out
        self.stop = stop
        self.clock = clock

    def run(self) -> None:
        open_path, open_file, handle = None, None, None
        try:
            for unit in self.units:
                if self.stop.is_set():
                    break
                started = time.perf_counter()
                if unit.source_file != open_path:
                    if handle is not None:
                        handle.close()
                    handle = storage.open_read(unit.source_file)
                    open_file, open_path = pq.ParquetFile(handle), unit.source_file
                try:
                    table = open_file.read_row_group(unit.row_group, columns=self.columns)
                except (OSError, pa.ArrowException) as error:
                    raise BadInputError(
                        f"input {unit.source_file}: row group {unit.row_group} cannot be read ({error}); "
                        "the file is truncated or corrupt: rewrite the partition and re-run"
                    ) from error
                self.clock.add("read", time.perf_counter() - started)
                if not put_unless_stopped(self.out, ReadUnit(unit, table), self.stop):
                    break
            put_unless_stopped(self.out, END, self.stop)
        except BaseException as error:  # handed to the main thread, which decides the exit code
            put_unless_stopped(self.out, StageFailure(error), self.stop)
        finally:
            if handle is not None:
                handle.close()


def _read_footer(path: str) -> pq.FileMetaData:
    try:
        with storage.open_read(path) as handle:
            return pq.ParquetFile(handle).metadata
    except FileNotFoundError as error:
        raise BadInputError(f"input {path} does not exist: the partition moved since planning") from error
    except (OSError, pa.ArrowException) as error:
        raise BadInputError(
            f"input {path} is not a readable Parquet file ({error}): it is truncated or corrupt, "
            "rewrite the partition and re-run"
        ) from error


def _describe(needed: dict[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in needed.items())
