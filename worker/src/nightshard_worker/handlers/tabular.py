"""Tabular scoring: a TorchScript module over float32 feature columns, one probability per row."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from nightshard_worker import storage, tuning
from nightshard_worker.contract import ModelSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows, uniform_edges
from nightshard_worker.input_requirements import NUMERIC


class TabularHandler(ModelHandler):
    """`model.artifact`: torch.jit.save'd module, float32 [N, F] -> [N] or [N, 1] probabilities."""

    output_fields = (pa.field("score", pa.float32()),)
    drift_edges = uniform_edges(0.0, 1.0, tuning.DRIFT_HISTOGRAM_BINS)

    def __init__(self, model_spec: ModelSpec, device: torch.device, precision: str):
        super().__init__(model_spec, device, precision)
        self.feature_columns: list[str] = list(self.options.get("feature_columns") or [])
        if not self.feature_columns:
            raise BadInputError("tabular handler needs model.options.feature_columns (a list of column names)")
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

    @property
    def required_columns(self) -> dict[str, str]:
        return {name: NUMERIC for name in self.feature_columns}

    def preprocess(self, table: pa.Table) -> PreparedRows:
        features = np.empty((table.num_rows, len(self.feature_columns)), dtype=np.float32)
        for position, name in enumerate(self.feature_columns):
            # Nulls become NaN so that one finiteness check catches nulls, NaN and inf alike. Filled in
            # Arrow and converted chunk by chunk: ChunkedArray.to_numpy would import pandas mid-shard.
            column = pc.fill_null(table.column(name).cast(pa.float64()), float("nan"))
            start = 0
            for chunk in column.chunks:
                features[start:start + len(chunk), position] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
        finite = np.isfinite(features)
        good_mask = finite.all(axis=1)
        bad_rows = {}
        for row in np.flatnonzero(~good_mask):
            columns = [self.feature_columns[i] for i in np.flatnonzero(~finite[row])]
            bad_rows[int(row)] = f"non-finite or null feature: {', '.join(columns)}"
        good_rows = np.flatnonzero(good_mask)
        return PreparedRows(
            tensors={"features": torch.from_numpy(np.ascontiguousarray(features[good_rows]))},
            good_rows=good_rows,
            bad_rows=bad_rows,
        )

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        scores = self.model(batch["features"])
        return {"score": scores.reshape(-1).float()}

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["score"]
