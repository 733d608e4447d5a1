"""Load stage: the shard's row groups, a step at a time, only the columns the model needs."""

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
from nightshard_worker.input_requirements import schema_problem
from nightshard_worker.metrics import StageClock
from nightshard_worker.stage_queue import END, StageFailure, put_unless_stopped


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One row group of one input file: the unit of checkpointing and resuming."""

    index: int
    source_file: str
    row_group: int
    rows: int
    column_types: tuple[str, ...] = ()  # of the columns read, in read order: equal types concatenate


@dataclass(frozen=True)
class Step:
    """Consecutive units read, preprocessed and scored as one table; committed whole."""

    units: tuple[Unit, ...]

    @property
    def where(self) -> str:
        """The step's place in the input, for error messages."""
        first, last = self.units[0], self.units[-1]
        if first is last:
            return f"input {first.source_file} row group {first.row_group}"
        if first.source_file == last.source_file:
            return f"input {first.source_file} row groups {first.row_group}-{last.row_group}"
        return f"inputs {first.source_file} row group {first.row_group} to {last.source_file} row group {last.row_group}"


@dataclass
class ReadStep:
    step: Step
    table: pa.Table


def plan_steps(units: list[Unit], min_rows: int) -> list[Step]:
    """Group consecutive units until a step holds at least `min_rows` rows.

    Small row groups are common (writers that flush often, many small files); scoring them one by
    one leaves batches part-empty, commits a few rows at a time and gives text's length sorting
    little to choose from. A row group at or above `min_rows` stays a step of its own, so a step
    holds under 2 x `min_rows` rows unless one row group is bigger. Units whose columns differ in
    type (files written by different writers) never share a step: their tables do not concatenate.
    """
    steps: list[Step] = []
    current: list[Unit] = []
    rows = 0
    for unit in units:
        if current and (rows >= min_rows or unit.column_types != current[-1].column_types):
            steps.append(Step(tuple(current)))
            current, rows = [], 0
        current.append(unit)
        rows += unit.rows
    if current:
        steps.append(Step(tuple(current)))
    return steps


def read_columns(spec: ShardSpec, required_columns: dict[str, str]) -> list[str]:
    """The columns the worker reads, in read order: the id first, then what the model needs."""
    return list(dict.fromkeys([spec.id_column, *required_columns]))


def check_inputs(spec: ShardSpec, required_columns: dict[str, str]) -> tuple[pa.DataType, list[Unit]]:
    """Open every input's footer; return the id column's type and the units with their row counts.

    Fails with BadInputError naming the file (and the column, and what the model needs) when a file
    is unreadable, a row group is missing or a column is absent or of the wrong type.
    """
    id_type: pa.DataType | None = None
    units: list[Unit] = []
    for input_slice in spec.inputs:
        metadata = _read_footer(input_slice.path)
        schema = metadata.schema.to_arrow_schema()
        problem = schema_problem({field.name: str(field.type) for field in schema}, required_columns, spec.id_column)
        if problem:
            raise BadInputError(
                f"input {input_slice.path}: {problem}. The {spec.model.handler} handler cannot score this file: "
                "fix the model options or the input partition."
            )
        this_id_type = schema.field(spec.id_column).type
        if id_type is not None and this_id_type != id_type:
            raise BadInputError(
                f"input {input_slice.path}: id column {spec.id_column!r} is {this_id_type}, "
                f"earlier inputs have {id_type}; one shard needs one id type"
            )
        id_type = this_id_type
        column_types = tuple(str(schema.field(column).type) for column in read_columns(spec, required_columns))
        for row_group in input_slice.row_groups:
            if not 0 <= row_group < metadata.num_row_groups:
                raise BadInputError(
                    f"input {input_slice.path} has {metadata.num_row_groups} row groups, the spec asks "
                    f"for row group {row_group}: the partition changed since planning, re-plan the run"
                )
            units.append(Unit(index=len(units), source_file=input_slice.path, row_group=row_group,
                              rows=metadata.row_group(row_group).num_rows, column_types=column_types))
    if id_type is None:
        raise BadInputError(f"shard {spec.shard_id} has no inputs")
    return id_type, units


class ReaderThread(threading.Thread):
    """Reads the steps into `out` in order; stops early when `stop` is set."""

    def __init__(self, *, steps: list[Step], columns: list[str], out: queue.Queue,
                 stop: threading.Event, clock: StageClock):
        super().__init__(name="reader", daemon=True)
        self.steps = steps
        self.columns = columns
        self.out = out
        self.stop = stop
        self.clock = clock
        self._open_path: str | None = None  # the input file `_read` has open, kept across steps
        self._open_file: pq.ParquetFile | None = None
        self._handle = None

    def run(self) -> None:
        try:
            for step in self.steps:
                if self.stop.is_set():
                    break
                started = time.perf_counter()
                tables = [self._read(unit) for unit in step.units]
                table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
                self.clock.add("read", time.perf_counter() - started)
                if not put_unless_stopped(self.out, ReadStep(step, table), self.stop):
                    break
            put_unless_stopped(self.out, END, self.stop)
        except BaseException as error:  # handed to the main thread, which decides the exit code
            put_unless_stopped(self.out, StageFailure(error), self.stop)
        finally:
            if self._handle is not None:
                self._handle.close()

    def _read(self, unit: Unit) -> pa.Table:
        if unit.source_file != self._open_path:
            if self._handle is not None:
                self._handle.close()
            self._handle = storage.open_read(unit.source_file)
            self._open_file, self._open_path = pq.ParquetFile(self._handle), unit.source_file
        try:
            # select(): the file's column order may differ from file to file; a step's must not.
            return self._open_file.read_row_group(unit.row_group, columns=self.columns).select(self.columns)
        except (OSError, pa.ArrowException) as error:
            raise BadInputError(
                f"input {unit.source_file}: row group {unit.row_group} cannot be read ({error}); "
                "the file is truncated or corrupt: rewrite the partition and re-run"
            ) from error


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
