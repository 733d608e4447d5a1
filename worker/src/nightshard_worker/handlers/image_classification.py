"""ImageNet classification of encoded images with EfficientNet-Lite0 and its shipped weights."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from nightshard_worker import model_files, tuning
from nightshard_worker.contract import ModelSpec
from nightshard_worker.handlers.base import ModelHandler, PreparedRows, uniform_edges
from nightshard_worker.input_requirements import image_classification_columns

_MEAN = np.array(tuning.IMAGENET_MEAN, dtype=np.float32)
_STD = np.array(tuning.IMAGENET_STD, dtype=np.float32)
# Pixels stay channels-last (NHWC in memory, NCHW in shape) from decode to forward pass: convolutions
# run ~30% faster that way on CPU (oneDNN) and it is the layout tensor cores want under autocast.
# A plain gather (index_select) would silently return NCHW-contiguous pixels: collate keeps the layout.
PIXEL_LAYOUT = torch.channels_last


class ImageClassificationHandler(ModelHandler):
    """`model.options.image_column` (PNG/JPEG bytes) -> `label` int32, `confidence` float32."""

    output_fields = (pa.field("label", pa.int32()), pa.field("confidence", pa.float32()))
    drift_edges = uniform_edges(0.0, 1.0, tuning.DRIFT_HISTOGRAM_BINS)
    column_rule = staticmethod(image_classification_columns)

    def __init__(self, *, model_spec: ModelSpec, device: torch.device, precision: str):
        super().__init__(model_spec=model_spec, device=device, precision=precision)
        from efficientnet_lite_pytorch import EfficientNet

        [self.image_column] = self.required_columns  # the rule names exactly one column
        weights = model_spec.artifact or model_files.efficientnet_lite0_weights()
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self.model = model.to(device, memory_format=PIXEL_LAYOUT).eval()

    def preprocess(self, table: pa.Table) -> PreparedRows:
        from PIL import Image, UnidentifiedImageError

        good_rows, pixels, bad_rows = [], [], {}
        for row, encoded in enumerate(table.column(self.image_column).to_pylist()):
            if not encoded:
                bad_rows[row] = "image is null or empty"
                continue
            try:
                with Image.open(io.BytesIO(encoded)) as image:
                    resized = image.convert("RGB").resize(
                        (tuning.IMAGE_SIZE, tuning.IMAGE_SIZE), Image.Resampling.BILINEAR
                    )
            except (UnidentifiedImageError, OSError, ValueError) as error:
                bad_rows[row] = f"image cannot be decoded: {error}"
                continue
            hwc = np.asarray(resized, dtype=np.float32) / 255.0
            pixels.append((hwc - _MEAN) / _STD)
            good_rows.append(row)
        tensors = {"pixels": torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)} if pixels else {}
        return PreparedRows(tensors=tensors, good_rows=np.array(good_rows, dtype=np.int64), bad_rows=bad_rows)

    def collate(self, prepared: PreparedRows, row_indices: np.ndarray) -> dict[str, torch.Tensor]:
        pixels = prepared.tensors["pixels"].index_select(0, torch.from_numpy(row_indices))
        return {"pixels": pixels.contiguous(memory_format=PIXEL_LAYOUT)}

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        probabilities = torch.softmax(self.model(batch["pixels"]).float(), dim=1)
        confidence, label = probabilities.max(dim=1)
        return {"label": label.int(), "confidence": confidence}

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["confidence"]
