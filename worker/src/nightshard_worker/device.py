"""The device and precision a shard runs on: the only place CPU and CUDA differ."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from nightshard_worker.errors import BadInputError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("fp32", *AUTOCAST_DTYPES)


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit `cuda` without a GPU is a spec error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(
            f"runtime.device is {requested!r} but this machine has no CUDA device: "
            "use device 'auto' or schedule the pod on a GPU node"
        )
    return device


def set_cpu_threads(threads: int | None) -> None:
    """torch's intra-op threads; None keeps torch's default (one per core)."""
    if threads:
        torch.set_num_threads(threads)


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BadInputError(f"runtime.precision {precision!r} is not one of {list(PRECISIONS)}")


@contextlib.contextmanager
def forward_context(device: torch.device, precision: str) -> Iterator[None]:
    """inference_mode always; autocast to bf16/fp16 when the spec asks for it."""
    with torch.inference_mode():
        if precision in AUTOCAST_DTYPES:
            with torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision]):
                yield
        else:
            yield


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """On CUDA, pinned host memory lets the copy overlap with the previous batch's kernels."""
    if device.type != "cuda":
        return tensors
    return {name: tensor.pin_memory().to(device, non_blocking=True) for name, tensor in tensors.items()}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def peak_device_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return 0


def current_device_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return 0


def utilization_ratio(device: torch.device) -> float | None:
    """GPU busy share from NVML through torch; None where NVML is not installed."""
    if device.type != "cuda":
        return None
    try:
        return torch.cuda.utilization(device) / 100.0
    except Exception:  # pynvml missing or NVML not initialisable: a metric, never a failure
        return None


def copy_done_event(device: torch.device) -> torch.cuda.Event | None:
    """An event recorded after the work queued so far on `device`; None where work is synchronous."""
    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event


def release_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
