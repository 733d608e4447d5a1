"""User handlers for the tests, loaded as "worker_test_handlers:Class" like a customer's own."""

from __future__ import annotations

import time
from typing import Any

import torch

from nightshard_worker.handlers.tabular import TabularHandler


class SlowTabularHandler(TabularHandler):
    """The tabular handler with a pause per forward pass, so tests can stop it mid-shard."""

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        time.sleep(float(self.options.get("delay_seconds", 0.05)))
        return super().predict(batch)


class OutOfMemoryAboveHandler(TabularHandler):
    """Raises CUDA OOM for batches above `oom_above_rows`, as a too-small GPU would."""

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        rows = batch["features"].shape[0]
        if rows > int(self.options["oom_above_rows"]):
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (test): {rows} rows")
        return super().predict(batch)
