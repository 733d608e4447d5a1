"""The GPU-only measurements, run here on CPU: the peak table, the MFU arithmetic, FLOP counting on a
model whose FLOPs are known, and the utilisation sampler reading `nvidia-smi` the way it would on a
GPU node (a stand-in `nvidia-smi` on PATH: no GPU runs here)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from bench import gpu, variants, workloads


@pytest.mark.parametrize(("device_name", "precision", "peak"), [
    ("NVIDIA H200", "bf16", 989e12),
    ("NVIDIA H100 80GB HBM3", "fp32", 67e12),
    ("NVIDIA H100 PCIe", "fp32", 51e12),
    ("NVIDIA H100 NVL", "bf16", 835e12),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312e12),
    ("NVIDIA L40S", "fp32", 91.6e12),
    ("NVIDIA L40", "fp32", 90.5e12),  # a substring match would have read it as an L4
    ("NVIDIA L4", "bf16", 121e12),
    ("Tesla T4", "fp16", 65e12),
])
def test_peak_flops_matches_the_names_cuda_reports(device_name: str, precision: str, peak: float) -> None:
    assert gpu.peak_flops(device_name, precision) == peak


@pytest.mark.parametrize(("device_name", "precision"), [
    ("NVIDIA A10G", "fp32"),  # not in the table: no guess from the A10
    ("Tesla T4", "bf16"),  # Turing has no bf16
    ("cpu", "fp32"),
])
def test_peak_flops_is_none_where_the_table_has_no_figure(device_name: str, precision: str) -> None:
    assert gpu.peak_flops(device_name, precision) is None


def test_model_flop_utilisation_is_achieved_over_peak() -> None:
    # 0.77 GFLOP an image at 20,000 images/s on an H200 in bf16: 15.4 TFLOP/s of 989.
    assert gpu.model_flop_utilisation(0.77e9, 20_000, "NVIDIA H200", "bf16") == pytest.approx(15.4e12 / 989e12)
    assert gpu.model_flop_utilisation(0.77e9, 20_000, "NVIDIA A10G", "bf16") is None


def test_flops_per_row_counts_the_matmuls_of_a_model_with_known_flops(tmp_path: Path) -> None:
    artifact = workloads.build_wide_tabular_model(tmp_path / "model")
    workload = workloads.write_tabular(tmp_path, 64, artifact, name="tabular_wide")
    handler = variants.make_handler(workload, "cpu", "fp32")
    batch = handler.preprocess(pq.read_table(workload.path)).tensors
    # 2 FLOPs per multiply-add of every Linear; bias adds and activations are not counted.
    assert gpu.flops_per_row(handler, batch, "fp32") == workloads.wide_tabular_flops_per_row()


def test_sampler_on_cpu_starts_no_thread_and_reports_none() -> None:
    with gpu.UtilizationSampler(torch.device("cpu")) as sampler:
        pass
    assert sampler.busy_percent is None
    assert sampler.samples == []


def test_sampler_asks_nvidia_smi_for_the_device_when_nvml_is_not_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda.utilization needs pynvml and a driver; without them the sampler asks nvidia-smi."""
    calls = tmp_path / "calls"
    fake = tmp_path / "nvidia-smi"
    # Answers as nvidia-smi does for --format=csv,noheader,nounits: the number alone.
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nif [ "$1" = "--id=1" ]; then echo 90; else echo 10; fi\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with gpu.UtilizationSampler(torch.device("cuda", 1)) as sampler:
        deadline = time.monotonic() + 30
        while len(sampler.samples) < 3 and time.monotonic() < deadline:
            time.sleep(gpu.UTILISATION_SAMPLE_SECONDS)
    assert sampler.busy_percent == 90.0
    assert calls.read_text().splitlines()[0] == "--id=1 --query-gpu=utilization.gpu --format=csv,noheader,nounits"


def test_sampler_without_nvml_or_nvidia_smi_reports_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    with gpu.UtilizationSampler(torch.device("cuda", 0)) as sampler:
        time.sleep(3 * gpu.UTILISATION_SAMPLE_SECONDS)
    assert sampler.busy_percent is None
