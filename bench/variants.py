"""The four ways to score a workload, each timed the same way: ceiling, worker, naive, Ray Data.

Every variant reports `load_seconds` (one-time: model load, and for the worker also interpreter
start and imports) apart from `steady_seconds` (reading the input through writing the output), so
rows/s is given both with and without the one-time cost. The ceiling has no input or output: it is
only the forward passes over tensors prepared up front by the worker's own handler and batching.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.gpu import UtilizationSampler
from bench.model_calls import forward_on_host, load_handler
from bench.workloads import ID_COLUMN, Workload
from nightshard_worker.contract import InputSlice, RuntimeSpec, ShardResult, ShardSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_LOADED_MARKER = " rows in "  # the worker's first log line after its model is loaded and inputs checked
WORKER_DONE_MARKER = "summary shard="  # logged once the output is published and the result written


@dataclass
class VariantRun:
    """One timed run of one variant over one workload."""

    variant: str
    rows: int
    load_seconds: float
    steady_seconds: float
    end_to_end_seconds: float
    process_wall_seconds: float | None = None  # worker and naive (own processes): spawn to exit
    peak_rss_bytes: int | None = None
    gpu_busy_percent: float | None = None
    details: dict = field(default_factory=dict)

    @property
    def steady_rows_per_second(self) -> float:
        return self.rows / self.steady_seconds

    @property
    def end_to_end_rows_per_second(self) -> float:
        return self.rows / self.end_to_end_seconds

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "steady_rows_per_second": round(self.steady_rows_per_second, 2),
                "end_to_end_rows_per_second": round(self.end_to_end_rows_per_second, 2)}


def make_handler(workload: Workload, device: str, precision: str):
    return load_handler(workload.model, device, precision)


# ---- ceiling ---------------------------------------------------------------------------------------

# Untimed forward passes over the first batch before the ceiling's clock: a ceiling runs warm (oneDNN
# primitives made, TorchScript past its profiling runs, CUDA context and kernels loaded). Without
# them the first repetition paid the cold start and the second did not.
CEILING_WARM_UP_PASSES = 3


class Ceiling:
    """The model alone, warm: every batch collated and on the device before the clock starts."""

    def __init__(self, workload: Workload, device: str, precision: str, threads: int):
        import torch

        from nightshard_worker import device as devices
        from nightshard_worker.batching import plan_batches
        from nightshard_worker.reader import Unit, plan_steps

        torch.set_num_threads(threads)
        self.workload, self.precision = workload, precision
        started = time.perf_counter()
        self.handler = make_handler(workload, device, precision)
        self.load_seconds = time.perf_counter() - started
        runtime = RuntimeSpec(batch_size=workload.batch_size)
        self.batches = []
        parquet = pq.ParquetFile(workload.path)
        columns = [ID_COLUMN, *self.handler.required_columns]
        units = [Unit(index=group, source_file=str(workload.path), row_group=group,
                      rows=parquet.metadata.row_group(group).num_rows)
                 for group in range(parquet.num_row_groups)]
        for step in plan_steps(units, workload.batch_size * self.handler.step_batches):  # the worker's steps
            table = pa.concat_tables([parquet.read_row_group(unit.row_group, columns=columns) for unit in step.units])
            prepared = self.handler.preprocess(table)
            max_tokens = runtime.max_batch_tokens if prepared.lengths is not None else None
            for rows in plan_batches(prepared.good_count, runtime.batch_size, prepared.lengths, max_tokens):
                self.batches.append(devices.to_device(self.handler.collate(prepared, rows), self.handler.device))
        for _ in range(CEILING_WARM_UP_PASSES):
            forward_on_host(self.handler, self.batches[0], self.precision)

    def run(self) -> VariantRun:
        with UtilizationSampler(self.handler.device) as sampler:
            started = time.perf_counter()
            for batch in self.batches:
                forward_on_host(self.handler, batch, self.precision)  # waits for the device
            seconds = time.perf_counter() - started
        return VariantRun("ceiling", self.workload.rows, self.load_seconds, seconds, seconds,
                          gpu_busy_percent=sampler.busy_percent, details={"batches": len(self.batches)})


# ---- worker ----------------------------------------------------------------------------------------

def worker_spec(workload: Workload, folder: Path, device: str, precision: str, threads: int,
                tag: str, checkpoint_dir: str | None = None) -> ShardSpec:
    metadata = pq.ParquetFile(workload.path).metadata
    runtime = RuntimeSpec(device=device, precision=precision, batch_size=workload.batch_size, threads=threads,
                          progress_interval_seconds=30.0, **workload.runtime)
    out = folder / tag
    return ShardSpec(
        pipeline=f"bench_{workload.name}", ds="2026-11-23", run_id=f"bench__{tag}", shard_id="0000",
        shard_index=0, shard_count=1,
        inputs=(InputSlice(str(workload.path), tuple(range(metadata.num_row_groups)), workload.rows),),
        input_rows=workload.rows, id_column=ID_COLUMN, model=workload.model, runtime=runtime,
        output_path=str(out / "part-0000.parquet"), quarantine_path=str(out / "quarantine-0000.parquet"),
        result_path=str(out / "result-0000.json"), checkpoint_dir=checkpoint_dir or str(out / "checkpoint"),
    )


def worker_environment() -> dict[str, str]:
    path = os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_worker(workload: Workload, folder: Path, device: str, precision: str, threads: int,
               tag: str, checkpoint_dir: str | None = None) -> VariantRun:
    """`nightshard-worker run --spec` in a subprocess.

    Lines are time-stamped as they arrive: spawn -> "N rows in" (interpreter, imports, model load,
    input check) is `load_seconds`; from there to the summary line (output merged, published,
    result written) is `steady_seconds`. Interpreter exit counts only in the process wall.
    """
    spec = worker_spec(workload, folder, device, precision, threads, tag, checkpoint_dir)
    shutil.rmtree(folder / tag, ignore_errors=True)
    (folder / tag).mkdir(parents=True)
    spec_path = folder / tag / "spec.json"
    spec_path.write_text(spec.to_json())
    command = [sys.executable, "-m", "nightshard_worker.cli", "run", "--spec", str(spec_path)]
    log_lines = []
    loaded_at = done_at = None
    with UtilizationSampler(_torch_device(device)) as sampler:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=worker_environment())
        memory = PeakMemorySampler(process.pid)
        for line in process.stdout:
            if loaded_at is None and WORKER_LOADED_MARKER in line:
                loaded_at = time.perf_counter()
            if done_at is None and WORKER_DONE_MARKER in line:
                done_at = time.perf_counter()
            log_lines.append(line)
        code = process.wait()
        ended = time.perf_counter()
        memory.stop()
    if code != 0 or loaded_at is None or done_at is None:
        raise RuntimeError(f"worker exited {code} on {workload.name} ({tag}):\n{''.join(log_lines[-40:])}")
    result = ShardResult.from_json(Path(spec.result_path).read_text())
    if result.rows_out != workload.rows:
        raise RuntimeError(f"worker scored {result.rows_out} of {workload.rows} rows ({tag})")
    return VariantRun(
        "worker", workload.rows, load_seconds=loaded_at - started, steady_seconds=done_at - loaded_at,
        end_to_end_seconds=result.wall_seconds, process_wall_seconds=ended - started,
        peak_rss_bytes=memory.peak_bytes, gpu_busy_percent=sampler.busy_percent,
        details={"stage_seconds": result.stage_seconds, "result_peak_rss_bytes": result.peak_rss_bytes, "log_tail": [line.rstrip() for line in log_lines[-3:]]},
    )


class PeakMemorySampler:
    """The child's VmHWM from /proc, read until it exits.

    Not the result's `peak_rss_bytes`: that is getrusage's ru_maxrss, which Linux carries over
    from the parent across fork+exec, so a worker started by a big process (this one, with models
    loaded) reports the parent's peak. VmHWM belongs to the new address space. It is a high-water
    mark, so sampling misses at most the growth of the last interval.
    """

    INTERVAL_SECONDS = 0.05

    def __init__(self, pid: int):
        import threading

        self.path = f"/proc/{pid}/status"
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="vmhwm", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                with open(self.path) as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            value = int(line.split()[1]) * 1024
                            self.peak_bytes = max(self.peak_bytes or 0, value)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass  # not started yet, or gone (a zombie has no VmHWM line)
            self._stop.wait(self.INTERVAL_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _torch_device(device: str):
    from nightshard_worker import device as devices

    return devices.resolve_device(device)


# ---- naive -----------------------------------------------------------------------------------------

def run_naive(workload: Workload, folder: Path, device: str, precision: str, threads: int) -> VariantRun:
    """`python -m bench.naive` in a fresh process, as the worker runs: see bench/naive.py."""
    from bench import naive

    (folder / "naive").mkdir(parents=True, exist_ok=True)
    document = folder / "naive" / "workload.json"
    document.write_text(naive.workload_document(workload))
    command = [sys.executable, "-m", "bench.naive", "--workload", str(document),
               "--output", str(folder / "naive" / f"{workload.name}.parquet"), "--device", device,
               "--precision", precision, "--threads", str(threads)]
    with UtilizationSampler(_torch_device(device)) as sampler:
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, env=worker_environment())
        ended = time.perf_counter()
    lines = [line for line in finished.stdout.splitlines() if line.startswith(naive.RESULT_PREFIX)]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"naive loop exited {finished.returncode} on {workload.name}:\n"
                           f"{finished.stdout[-2000:]}{finished.stderr[-4000:]}")
    timings = json.loads(lines[-1][len(naive.RESULT_PREFIX):])
    if timings["rows"] != workload.rows:
        raise RuntimeError(f"naive loop wrote {timings['rows']} of {workload.rows} rows")
    return VariantRun("naive", workload.rows, timings["load_seconds"], timings["steady_seconds"],
                      timings["end_to_end_seconds"], process_wall_seconds=ended - started,
                      gpu_busy_percent=sampler.busy_percent)


# ---- Ray Data --------------------------------------------------------------------------------------

def start_ray(cpus: int, gpus: int) -> float:
    """Local Ray with the cores the other variants get; returns the start-up seconds (not timed)."""
    import ray

    started = time.perf_counter()
    path = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", configure_logging=True,
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return time.perf_counter() - started


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def run_ray(workload: Workload, folder: Path, device: str, precision: str, threads: int, tag: str) -> VariantRun:
    """read_parquet -> map_batches(the handler as a callable class, concurrency=1) -> write_parquet."""
    import ray.data

    from bench.ray_model import HandlerBatchScorer

    output = folder / "ray" / tag
    shutil.rmtree(output, ignore_errors=True)
    load_report = folder / "ray" / f"{tag}-load.json"
    load_report.parent.mkdir(parents=True, exist_ok=True)
    load_report.unlink(missing_ok=True)
    on_gpu = _torch_device(device).type == "cuda"
    with UtilizationSampler(_torch_device(device)) as sampler:
        started = time.perf_counter()
        dataset = ray.data.read_parquet(str(workload.path))
        scored = dataset.map_batches(
            HandlerBatchScorer,
            fn_constructor_kwargs={"model": dataclasses.asdict(workload.model), "device": device,
                                   "precision": precision, "threads": threads, "load_report": str(load_report)},
            batch_size=workload.batch_size, batch_format="pyarrow", concurrency=1,
            num_gpus=1 if on_gpu else 0, num_cpus=1,
        )
        scored.write_parquet(str(output))
        ended = time.perf_counter()
    rows = pq.read_table(output, columns=[ID_COLUMN]).num_rows
    if rows != workload.rows:
        raise RuntimeError(f"Ray Data wrote {rows} of {workload.rows} rows ({tag})")
    load_seconds = json.loads(load_report.read_text())["load_seconds"]
    # The actor's model load happens inside Ray's execution; it is taken out of `steady` like for
    # the other variants, but Ray's own planning and actor start-up stay in.
    return VariantRun("ray", workload.rows, load_seconds, ended - started - load_seconds, ended - started,
                      gpu_busy_percent=sampler.busy_percent)
