"""The two calls every benchmark variant makes on the worker's handler, written once.

Kept free of the benchmark's own imports: Ray Data's actors and the naive loop's fresh process
import it, and their clocks count what they import.
"""

from __future__ import annotations

from typing import Any


def load_handler(model: Any, device: str, precision: str):
    """The worker's handler for `model` (a ModelSpec, or its fields as a dict) on `device`."""
    from nightshard_worker import device as devices
    from nightshard_worker.contract import ModelSpec
    from nightshard_worker.handlers import handler_class

    spec = model if isinstance(model, ModelSpec) else ModelSpec(**model)
    return handler_class(spec.handler)(model_spec=spec, device=devices.resolve_device(device), precision=precision)


def forward_on_host(handler, batch: dict, precision: str) -> dict:
    """One forward pass over a batch already on the handler's device; outputs as numpy, waited for."""
    from nightshard_worker import device as devices

    with devices.forward_context(handler.device, precision):
        outputs = handler.predict(batch)
    return {name: _waited_on_host(value) for name, value in outputs.items()}


def _waited_on_host(value):
    """A device output as numpy, waiting for it (the baselines score one batch at a time)."""
    import numpy as np
    import torch

    if not isinstance(value, torch.Tensor):
        return np.asarray(value)
    value = value.detach()
    if value.is_floating_point() and value.dtype != torch.float32:
        value = value.float()  # bf16/fp16 from autocast: numpy has no bf16
    return value.cpu().numpy()
