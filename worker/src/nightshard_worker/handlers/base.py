"""The model handler interface: what a model must provide to be scored by the worker.

A handler is a small class. The engine calls, in this order:

1. `__init__(*, model_spec, device, precision)` once per process: load weights, move them to `device`.
2. `required_columns`: column name -> kind (`numeric`, `string`, `binary`, `any`, as in
   `nightshard_worker.input_requirements`), checked against every input file before scoring. A handler
   sets `column_rule` (the torch-free rule that reads them from the model options, which the plan task
   asks too) or overrides the property.
3. `preprocess(table)` on a preprocess thread, once per step (consecutive row groups holding at
   least `step_batches` x batch size rows): returns `PreparedRows` with CPU tensors for the good
   rows and a reason for each bad row (quarantined, never scored).
   Tokenisers, image decoders and torch release the GIL, so threads overlap with the forward pass.
4. `collate(prepared, row_indices)` -> the tensors of one forward pass (the default indexes every
   tensor; text trims padding to the batch's longest row).
5. `predict(batch)` in the main thread under `torch.inference_mode` and autocast: tensors already on
   the device in, `{output name: tensor or array with one entry per row}` out.
6. `output_fields`: the Arrow fields of the outputs, in column order (the id column comes first,
   added by the engine).
7. `drift_values(outputs)` -> one float per row, histogrammed on the fixed `drift_edges`.

`predict` may raise `torch.cuda.OutOfMemoryError`: the engine halves the batch and retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from nightshard_worker.contract import ModelSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.input_requirements import ColumnRule, RequirementError


@dataclass(kw_only=True)
class PreparedRows:
    """One step (one or more row groups, concatenated) after preprocessing.

    `tensors` hold the good rows only, in the order of `good_rows` (their indices in the step's
    table). `bad_rows` maps a row index in that table to the reason it is quarantined. `lengths` (one
    per good row) turns on token-budget batching.
    """

    tensors: dict[str, torch.Tensor]
    good_rows: np.ndarray
    bad_rows: dict[int, str] = field(default_factory=dict)
    lengths: np.ndarray | None = None

    @property
    def good_count(self) -> int:
        return len(self.good_rows)


class ModelHandler:
    """Base class of every handler; subclasses set the class attributes and the methods below."""

    output_fields: tuple[pa.Field, ...] = ()
    drift_edges: tuple[float, ...] = ()
    # Small row groups are scored together until a step holds this many batches of rows. More is
    # fuller batches and fewer commits; it also multiplies the memory of every queued step, so a
    # handler with big prepared rows (decoded images) keeps it at 1.
    step_batches: int = 1
    # A boolean output column that marks rows the model saw only in part (text cut at its context);
    # the shard result counts its true values. None: the handler never cuts.
    truncation_column: str | None = None
    # Which input columns the handler reads, from which model options: a rule of
    # nightshard_worker.input_requirements (staticmethod(...)), registered there under the handler's name
    # for the plan task. None: the handler overrides `required_columns` itself.
    column_rule: ColumnRule | None = None

    def __init__(self, *, model_spec: ModelSpec, device: torch.device, precision: str):
        self.model_spec = model_spec
        self.options: dict[str, Any] = dict(model_spec.options or {})
        self.device = device
        self.precision = precision
        self.model: torch.nn.Module | None = None
        self._required_columns: dict[str, str] | None = None
        if self.column_rule is not None:
            try:
                self._required_columns = self.column_rule(self.options)
            except RequirementError as error:
                raise BadInputError(str(error)) from None

    @property
    def required_columns(self) -> dict[str, str]:
        if self._required_columns is None:
            raise NotImplementedError(f"{type(self).__name__} sets no column_rule and does not override "
                                      "required_columns")
        return self._required_columns

    def preprocess(self, table: pa.Table) -> PreparedRows:
        raise NotImplementedError

    def collate(self, prepared: PreparedRows, row_indices: np.ndarray) -> dict[str, torch.Tensor]:
        index = torch.from_numpy(row_indices)
        return {name: tensor.index_select(0, index) for name, tensor in prepared.tensors.items()}

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        raise NotImplementedError

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def compile(self) -> None:
        """torch.compile the model once; handlers without a single module may override."""
        if self.model is not None:
            self.model = torch.compile(self.model)

    def to_arrow(self, outputs: dict[str, np.ndarray]) -> list[pa.Array]:
        """Output arrays in `output_fields` order, cast to the declared Arrow types."""
        arrays = []
        for output_field in self.output_fields:
            values = np.asarray(outputs[output_field.name])
            if pa.types.is_fixed_size_list(output_field.type):
                width = output_field.type.list_size
                value_type = output_field.type.value_type.to_pandas_dtype()
                flat = pa.array(values.astype(value_type, copy=False).reshape(-1), type=output_field.type.value_type)
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, width))
            else:
                arrays.append(pa.array(values.astype(output_field.type.to_pandas_dtype(), copy=False),
                                       type=output_field.type))
        return arrays


def uniform_edges(low: float, high: float, bins: int) -> tuple[float, ...]:
    return tuple(float(edge) for edge in np.linspace(low, high, bins + 1))
