"""Predict stage: batched forward passes on the device, halving a batch that runs out of memory."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
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


@dataclass(kw_only=True)
class _InFlight:
    """A batch whose forward pass and copy back to the host are queued on the device."""

    row_indices: np.ndarray
    outputs: dict[str, Any]  # host tensors being filled (pinned, on CUDA) or values already on the host
    copied: Any  # torch.cuda.Event once they are filled; None on CPU, where they already are
    started: float


class BatchScorer:
    """Scores prepared steps in batches; one instance per process. The model is the handler's, already loaded.

    One batch is kept in flight: batch N+1 is collated, copied and queued on the device before the
    host waits for batch N's outputs, so a GPU is not left idle while Python collates and launches
    the next batch. On CPU every call is synchronous and the order changes nothing.
    """

    def __init__(self, *, handler: ModelHandler, runtime: RuntimeSpec, device: torch.device,
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
        in_flight: _InFlight | None = None
        for row_indices in batches:
            if self.stop.is_set():
                return None
            try:
                launched = self._launch(prepared, row_indices)
            except torch.cuda.OutOfMemoryError as error:
                # Out of memory is raised when the batch is queued: finish the one in flight, then
                # halve this one, synchronously, until its parts fit.
                if in_flight is not None:
                    self._read_back(in_flight, collected, prepared.good_count)
                    in_flight = None
                _scatter(collected, prepared.good_count, row_indices,
                         self._halve_after_oom(prepared, row_indices, where, error))
                continue
            if in_flight is not None:
                self._read_back(in_flight, collected, prepared.good_count)
            in_flight = launched
        if in_flight is not None:
            self._read_back(in_flight, collected, prepared.good_count)
        return collected

    def _read_back(self, in_flight: _InFlight, collected: dict[str, np.ndarray], good_count: int) -> None:
        _scatter(collected, good_count, in_flight.row_indices, self._collect(in_flight))

    def _run_splitting_on_oom(self, prepared: PreparedRows, row_indices: np.ndarray,
                              where: str) -> dict[str, np.ndarray]:
        try:
            return self._collect(self._launch(prepared, row_indices))
        except torch.cuda.OutOfMemoryError as error:
            return self._halve_after_oom(prepared, row_indices, where, error)

    def _halve_after_oom(self, prepared: PreparedRows, row_indices: np.ndarray, where: str,
                         error: torch.cuda.OutOfMemoryError) -> dict[str, np.ndarray]:
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

    def _launch(self, prepared: PreparedRows, row_indices: np.ndarray) -> _InFlight:
        started = time.perf_counter()
        batch = devices.to_device(self.handler.collate(prepared, row_indices), self.device)
        with devices.forward_context(self.device, self.runtime.precision):
            outputs = self.handler.predict(batch)
            host = {name: _start_copy_to_host(value) for name, value in outputs.items()}
        launched = _InFlight(row_indices=row_indices, outputs=host, copied=devices.copy_done_event(self.device),
                             started=started)
        self.clock.add("predict", time.perf_counter() - started)
        return launched

    def _collect(self, in_flight: _InFlight) -> dict[str, np.ndarray]:
        waited = time.perf_counter()
        if in_flight.copied is not None:
            in_flight.copied.synchronize()  # this batch's outputs are on the host; the next batch runs on
        arrays = {name: _host_numpy(value) for name, value in in_flight.outputs.items()}
        ended = time.perf_counter()
        self.clock.add("predict", ended - waited)
        self.metrics.batches.inc()
        self.metrics.batch_seconds.observe(ended - in_flight.started)
        return arrays


def _scatter(collected: dict[str, np.ndarray], good_count: int, row_indices: np.ndarray,
             outputs: dict[str, np.ndarray]) -> None:
    """Write a batch's outputs at its rows' places: input order is restored here."""
    for name, values in outputs.items():
        if name not in collected:
            collected[name] = np.empty((good_count, *values.shape[1:]), dtype=values.dtype)
        collected[name][row_indices] = values


def _start_copy_to_host(value: Any) -> Any:
    """Queue a device tensor's copy to host memory without waiting for it; other values pass."""
    if not isinstance(value, torch.Tensor):
        return value
    # From CUDA, non_blocking lands in pinned memory and returns at once: read it only after the event.
    return _numpy_dtype(value).to("cpu", non_blocking=True)


def _host_numpy(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _numpy_dtype(value: torch.Tensor) -> torch.Tensor:
    if value.is_floating_point() and value.dtype != torch.float32:
        return value.detach().float()  # bf16/fp16 from autocast: numpy has no bf16
    return value.detach()
