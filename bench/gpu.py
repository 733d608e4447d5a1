"""GPU-only measurements: busy share sampled during a run, and model FLOP utilisation (MFU).

On CPU every function here returns None and the report prints why, so the same command runs on
both machines.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

UTILISATION_SAMPLE_SECONDS = 0.1  # NVML's own averaging window is ~1/6 s; finer adds nothing

# Dense peak FLOP/s by device name, from the vendors' data sheets. fp32 is the non-tensor-core
# figure (the worker's default precision leaves TF32 off); bf16/fp16 the dense tensor-core figure.
# An entry matches when all its words are words of the name CUDA reports ("NVIDIA H100 80GB HBM3",
# "NVIDIA A100-SXM4-80GB", "Tesla T4"): whole words, so an L40 is never read as an L4. The first
# match wins, so a variant (H100 PCIe) comes before its family (H100).
PEAK_FLOPS = (
    (("H200",), {"fp32": 67e12, "bf16": 989e12, "fp16": 989e12}),
    (("H100", "PCIe"), {"fp32": 51e12, "bf16": 756e12, "fp16": 756e12}),
    (("H100", "NVL"), {"fp32": 60e12, "bf16": 835e12, "fp16": 835e12}),
    (("H100",), {"fp32": 67e12, "bf16": 989e12, "fp16": 989e12}),
    (("A100",), {"fp32": 19.5e12, "bf16": 312e12, "fp16": 312e12}),
    (("L40S",), {"fp32": 91.6e12, "bf16": 362e12, "fp16": 362e12}),
    (("L40",), {"fp32": 90.5e12, "bf16": 181e12, "fp16": 181e12}),
    (("L4",), {"fp32": 30.3e12, "bf16": 121e12, "fp16": 121e12}),
    (("A10",), {"fp32": 31.2e12, "bf16": 125e12, "fp16": 125e12}),
    (("T4",), {"fp32": 8.1e12, "fp16": 65e12}),  # Turing has no bf16
)


def device_words(device_name: str) -> set[str]:
    return {word for word in re.split(r"[\s\-_/]+", device_name.lower()) if word}


def peak_flops(device_name: str, precision: str) -> float | None:
    words = device_words(device_name)
    for required, peaks in PEAK_FLOPS:
        if all(word.lower() in words for word in required):
            return peaks.get(precision)
    return None


def _read_utilisation(device) -> float | None:
    import torch

    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # pynvml missing: ask nvidia-smi instead
        if shutil.which("nvidia-smi") is None:
            return None
        index = device.index or 0
        answer = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                                 "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
        try:
            return float(answer.stdout.strip().splitlines()[0])
        except (ValueError, IndexError):
            return None


class UtilizationSampler:
    """Context manager: samples the GPU's busy percent in a thread; `busy_percent` is the mean."""

    def __init__(self, device):
        self.device = device
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> UtilizationSampler:
        if getattr(self.device, "type", "cpu") == "cuda":
            self._thread = threading.Thread(target=self._sample, name="gpu-utilisation", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(UTILISATION_SAMPLE_SECONDS):
            value = _read_utilisation(self.device)
            if value is not None:
                self.samples.append(value)

    @property
    def busy_percent(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def flops_per_row(handler, batch: dict, precision: str) -> float:
    """FLOPs of one forward pass over `batch` (FlopCounterMode), divided by its rows."""
    from torch.utils.flop_counter import FlopCounterMode

    from nightshard_worker import device as devices

    rows = next(iter(batch.values())).shape[0]
    with FlopCounterMode(display=False) as counter:
        with devices.forward_context(handler.device, precision):
            handler.predict(batch)
    return counter.get_total_flops() / rows


def model_flop_utilisation(flops_each_row: float, rows_per_second: float, device_name: str,
                           precision: str) -> float | None:
    peak = peak_flops(device_name, precision)
    if peak is None:
        return None
    return flops_each_row * rows_per_second / peak
