"""Predict stage: batched forward passes on the device, halving a batch that runs out of memory."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import torch

from nightshard_worker import device as devices
from nightshard_worker.batching import plan_batches, split_in_halves
from nightshard_worker.contract import RuntimeSpec
from nightshard_worker.errors import RowTooLargeError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows
from nightshard_worker.metrics import StageClock, WorkerMetrics

log = logging.getLogger(__name__)


class Predictor:
    """Scores prepared steps; one instance per process, model already loaded in the handler."""

    def __init__(self, handler: ModelHandler, runtime: RuntimeSpec, device: torch.device,
                 metrics: WorkerMetrics, clock: StageClock, stop: threading.Event):
        self.handler = handler
        self.runtime = runtime
        self.device = device
        self.metrics = metrics
        self.clock = clock
        self.stop = stop
        self.oom_splits = 0

    def score(self, prepared: PreparedRows, where: str) -> dict[str, np.ndarray] | None:
        """Outputs for every good row, in `prepared.good_rows` order; None when stopped midway.

        `where` names the step's row groups in errors. Stopping between batches bounds the SIGTERM
        reaction to one forward pass; the half-scored step is dropped and redone on resume.
        """
        batches = plan_batches(prepared.good_count, self.runtime.batch_size, prepared.lengths,
                               self.runtime.max_batch_tokens if prepared.lengths is not None else None)
        collected: dict[str, np.ndarray] = {}
        for row_indices in batches:
            if self.stop.is_set():
                return None
            for name, values in self._run_splitting_on_oom(prepared, row_indices, where).items():
                if name not in collected:
                    collected[name] = np.empty((prepared.good_count, *values.shape[1:]), dtype=values.dtype)
                collected[name][row_indices] = values  # scatter back: input order restored here
        return collected

    def _run_splitting_on_oom(self, prepared: PreparedRows, row_indices: np.ndarray,
                              where: str) -> dict[str, np.ndarray]:
        try:
            return self._forward(prepared, row_indices)
        except torch.cuda.OutOfMemoryError as error:
            devices.release_cached_memory(self.device)
            if len(row_indices) <= 1:
                raise RowTooLargeError(
                    f"{where}: a single row runs the device out of memory ({error}). Lower "
                    "model.options.max_length (text) or use a device with more memory."
                ) from error
            self.oom_splits += 1
            first, second = split_in_halves(row_indices)
            log.warning("%s: out of device memory on a batch of %d rows, retrying as %d + %d",
                        where, len(row_indices), len(first), len(second))
            first_out = self._run_splitting_on_oom(prepared, first, where)
            second_out = self._run_splitting_on_oom(prepared, second, where)
            return {name: np.concatenate([first_out[name], second_out[name]]) for name in first_out}

    def _forward(self, prepared: PreparedRows, row_indices: np.ndarray) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        batch = devices.to_device(self.handler.collate(prepared, row_indices), self.device)
        with devices.forward_context(self.device, self.runtime.precision):
            outputs = self.handler.predict(batch)
        host = {name: _to_numpy(value) for name, value in outputs.items()}  # waits for the device
        seconds = time.perf_counter() - started
        self.clock.add("predict", seconds)
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(seconds)
        return host


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and value.dtype != torch.float32:
            value = value.float()  # bf16/fp16 from autocast: numpy has no bf16
        return value.detach().cpu().numpy()
    return np.asarray(value)
