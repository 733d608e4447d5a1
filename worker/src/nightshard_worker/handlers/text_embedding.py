"""Sentence embeddings with MiniLM: mean pooling over the attention mask, L2-normalised."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from nightshard_worker import model_files, tuning
from nightshard_worker.contract import ModelSpec
from nightshard_worker.errors import BadInputError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows, uniform_edges
from nightshard_worker.input_requirements import text_embedding_columns

EMBEDDING_WIDTH = 384  # all-MiniLM-L6-v2's hidden size


class TextEmbeddingHandler(ModelHandler):
    """`model.options.text_column` -> `embedding` fixed_size_list<float32>[384], and `truncated`: the row
    was longer than `max_length` tokens and its embedding covers only the first ones."""

    output_fields = (pa.field("embedding", pa.list_(pa.float32(), EMBEDDING_WIDTH)),
                     pa.field("truncated", pa.bool_()))
    truncation_column = "truncated"
    drift_edges = uniform_edges(-1.0, 1.0, tuning.DRIFT_HISTOGRAM_BINS)
    # Length sorting packs a batch from rows of alike length: the more rows it picks from, the
    # less padding (a step of 8 batches of tokens is a few MB).
    step_batches = 8
    column_rule = staticmethod(text_embedding_columns)

    def __init__(self, *, model_spec: ModelSpec, device: torch.device, precision: str):
        super().__init__(model_spec=model_spec, device=device, precision=precision)
        from transformers import AutoModel, AutoTokenizer

        [self.text_column] = self.required_columns  # the rule names exactly one column
        self.max_length = int(self.options.get("max_length", tuning.DEFAULT_TEXT_MAX_LENGTH))
        model_dir = model_spec.artifact or model_files.minilm_dir()
        if not os.path.isdir(model_dir):
            raise BadInputError(f"text_embedding model directory {model_dir} does not exist")
        # local_files_only: the worker never reaches a hub, the weights ship with the image.
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, use_fast=True)
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True).to(device).eval()
        # The fast tokenizer sets its truncation and padding state on the first call; preprocess threads
        # share it, and two first calls at once fail with "Already borrowed". One call here sets it.
        self._tokenize(["warm-up"])
        # The drift signal: where embeddings sit along one fixed direction, cheap and model-agnostic.
        self._drift_direction = np.full(EMBEDDING_WIDTH, 1.0 / np.sqrt(EMBEDDING_WIDTH), dtype=np.float32)

    def preprocess(self, table: pa.Table) -> PreparedRows:
        texts = table.column(self.text_column).to_pylist()
        good_rows, good_texts, bad_rows = [], [], {}
        for row, text in enumerate(texts):
            if text is None:
                bad_rows[row] = "text is null"
            elif not text.strip():
                bad_rows[row] = "text is empty or whitespace"
            else:
                good_rows.append(row)
                good_texts.append(text)
        if not good_texts:
            return PreparedRows(tensors={}, good_rows=np.array([], dtype=np.int64), bad_rows=bad_rows)
        input_ids, mask, truncated = self._tokenize(good_texts)
        return PreparedRows(
            tensors={"input_ids": input_ids, "attention_mask": mask, "truncated": truncated},
            good_rows=np.array(good_rows, dtype=np.int64),
            bad_rows=bad_rows,
            lengths=mask.sum(dim=1).numpy(),
        )

    def _tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids and mask cut at max_length (exactly as the tokenizer's own truncation cuts), and
        which rows were cut: tokenised to one token more, a row that fills it did not fit."""
        limit = self.max_length
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=limit + 1, return_tensors="pt")
        input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
        truncated = mask.sum(dim=1) > limit
        if input_ids.shape[1] > limit:
            closing = input_ids[:, limit]  # a cut row ends on the tokenizer's closing token ([SEP])
            input_ids, mask = input_ids[:, :limit].clone(), mask[:, :limit].contiguous()
            closes = truncated & torch.isin(closing, torch.tensor(self.tokenizer.all_special_ids))
            input_ids[closes, limit - 1] = closing[closes]
        return input_ids, mask, truncated

    def collate(self, prepared: PreparedRows, row_indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = super().collate(prepared, row_indices)
        # Rows were padded to the row group's longest; trim to this batch's longest.
        longest = int(prepared.lengths[row_indices].max())
        return {name: tensor[:, :longest].contiguous() if tensor.dim() == 2 else tensor
                for name, tensor in batch.items()}

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        embeddings = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
        return {"embedding": embeddings, "truncated": batch["truncated"]}

    def drift_values(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(outputs["embedding"], dtype=np.float32) @ self._drift_direction
