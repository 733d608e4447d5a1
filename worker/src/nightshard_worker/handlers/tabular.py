"""Tabular scoring: a TorchScript module over float32 feature columns, one probability per row."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from nightshard_worker import storage, tuning
from nightshard_worker.contract import ModelSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows, uniform_edges
from nightshard_worker.input_requirements import tabular_columns

# Feature column types read straight from their Arrow buffers; other numeric types are cast first.
_FLOAT_DTYPES = {pa.float32(): np.dtype(np.float32), pa.float64(): np.dtype(np.float64)}


class TabularHandler(ModelHandler):
    """`model.artifact`: torch.jit.save'd module, float32 [N, F] -> [N] or [N, 1] probabilities."""

    output_fields = (pa.field("score", pa.float32()),)
    drift_edges = uniform_edges(0.0, 1.0, tuning.DRIFT_HISTOGRAM_BINS)
    # A row is a few floats: four batches of them cost little memory and a quarter of the commits.
    step_batches = 4
    column_rule = staticmethod(tabular_columns)

    def __init__(self, *, model_spec: ModelSpec, device: torch.device, precision: str):
        super().__init__(model_spec=model_spec, device=device, precision=precision)
        self.feature_columns: list[str] = list(self.required_columns)
        if not model_spec.artifact:
            raise BadInputError("tabular handler needs model.artifact: the TorchScript file to score with")
        try:
            # Read through fsspec so the artifact may live in the model bucket.
            artifact_bytes = storage.read_bytes(model_spec.artifact)
            self.model = torch.jit.load(io.BytesIO(artifact_bytes), map_location=device).eval()
        except FileNotFoundError as error:
            raise BadInputError(f"model.artifact {model_spec.artifact} does not exist") from error
        except RuntimeError as error:
            raise BadInputError(
                f"model.artifact {model_spec.artifact} is not a TorchScript file (torch.jit.save): {error}"
            ) from error

    def preprocess(self, table: pa.Table) -> PreparedRows:
        features = np.empty((table.num_rows, len(self.feature_columns)), dtype=np.float32)
        for position, name in enumerate(self.feature_columns):
            column = table.column(name)
            if column.type not in _FLOAT_DTYPES:
                column = column.cast(pa.float64())  # ints, decimals, bools: float64 first, float32 below
            start = 0
            for chunk in column.chunks:
                features[start:start + len(chunk), position] = _values_with_nan_for_null(chunk)
                start += len(chunk)
        finite = np.isfinite(features)
        good_mask = finite.all(axis=1)
        bad_rows = {}
        for row in np.flatnonzero(~good_mask):
            columns = [self.feature_columns[i] for i in np.flatnonzero(~finite[row])]
            bad_rows[int(row)] = f"non-finite or null feature: {', '.join(columns)}"
        good_rows = np.flatnonzero(good_mask)
        good_features = features if not bad_rows else np.ascontiguousarray(features[good_rows])
        return PreparedRows(
            tensors={"features": torch.from_numpy(good_features)},
            good_rows=good_rows,
            bad_rows=bad_rows,
        )

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        scores = self.model(batch["features"])
        return {"score": scores.reshape(-1).float()}

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["score"]


def _values_with_nan_for_null(chunk: pa.Array) -> np.ndarray:
    """A float32/float64 Arrow array as numpy, nulls as NaN: one finiteness check catches nulls, NaN and inf.

    Read from the Arrow buffers directly: pyarrow's own conversions (Array.to_numpy with nulls,
    fill_null with a Python float) import pandas, a 0.25 s stall in the middle of a shard.
    """
    validity, data = chunk.buffers()[:2]
    dtype = _FLOAT_DTYPES[chunk.type]
    values = np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
    if not chunk.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return np.where(bits[chunk.offset:chunk.offset + len(chunk)].astype(bool), values, np.nan)
