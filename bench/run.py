"""Benchmark the worker against the model-only ceiling, a naive pandas loop and Ray Data.

    PYTHONPATH=plugins:. .venv/bin/python -m bench.run            # full run, < 10 min on 2 CPU cores
    PYTHONPATH=plugins:. .venv/bin/python -m bench.run --quick    # smoke run, tiny sizes
    PYTHONPATH=plugins:. .venv/bin/python -m bench.run --text-rows 20000 --workloads text

Variants run interleaved (rep 1: C W N R, rep 2: R N W C, ...) on the same data, model and torch
thread count; the table shows medians. Writes bench/results/<workload>-<device>.json, and
scaling-<device>.json/.png. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make the repo root and plugins importable
    _root = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(_root), str(_root / "plugins")]

from bench import gpu, parquet_floor, targets, variants, workloads  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VARIANTS = ("ceiling", "worker", "naive", "ray")

# Default sizes by device: the CPU ones keep the full command under 10 minutes on 2 shared cores.
CPU_SIZES = {"text_rows": 300, "tabular_rows": 200_000, "wide_rows": 200_000, "image_rows": 64,
             "sweep_text_rows": 80, "reps": 2}
GPU_SIZES = {"text_rows": 20_000, "tabular_rows": 2_000_000, "wide_rows": 2_000_000, "image_rows": 8192,
             "sweep_text_rows": 4000, "reps": 3}
QUICK_SIZES = {"text_rows": 64, "tabular_rows": 20_000, "wide_rows": 10_000, "image_rows": 16,
               "sweep_text_rows": 32, "reps": 1}
WORKLOADS = ("text", "tabular", "tabular_wide", "image")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition: a smoke run")
    parser.add_argument("--workloads", help="comma-separated subset of " + ",".join(WORKLOADS) + " "
                        "(default all; --quick: text,tabular)")
    parser.add_argument("--text-rows", type=int, help="text shard rows (cpu default 300, gpu 20000)")
    parser.add_argument("--tabular-rows", type=int, help="tabular shard rows (the memory check uses a tenth)")
    parser.add_argument("--wide-rows", type=int, help="tabular_wide shard rows")
    parser.add_argument("--image-rows", type=int)
    parser.add_argument("--sweep-text-rows", type=int, help="text rows per point of the threads sweep")
    parser.add_argument("--reps", type=int, help="interleaved repetitions per variant")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="torch intra-op threads for every variant (default 2, or nproc if smaller)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--no-ray", action="store_true", help="skip Ray Data (its rows say not measured)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of " + ",".join(VARIANTS) + " (default all); the "
                        "others' rows and the targets needing them say not measured")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON and PNG go")
    arguments = parser.parse_args(argv)
    arguments.variants = [name.strip() for name in arguments.variants.split(",") if name.strip()]
    unknown = sorted(set(arguments.variants) - set(VARIANTS))
    if unknown or not arguments.variants:
        parser.error(f"--variants {','.join(unknown) or '(empty)'}: choose from {','.join(VARIANTS)}")
    if "ray" not in arguments.variants:
        arguments.no_ray = True
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # same tokenizer threads in every process
    import torch

    from nightshard_worker import device as devices

    device = devices.resolve_device(arguments.device)
    sizes = dict(QUICK_SIZES if arguments.quick else GPU_SIZES if device.type == "cuda" else CPU_SIZES)
    for key in sizes:
        if getattr(arguments, key, None) is not None:
            sizes[key] = getattr(arguments, key)
    torch.set_num_threads(arguments.threads)
    machine = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": device.type, "device_name": devices.device_name(device), "nproc": os.cpu_count(),
        "torch_threads": arguments.threads, "precision": arguments.precision, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "quick": arguments.quick,
        **sizes,
    }
    print(f"bench: {machine['date']} device={device.type} ({machine['device_name']}) nproc={machine['nproc']} "
          f"torch_threads={arguments.threads} precision={arguments.precision} sizes={sizes}", flush=True)
    listed = arguments.workloads or ("text,tabular" if arguments.quick else ",".join(WORKLOADS))
    chosen = [name.strip() for name in listed.split(",") if name.strip()]
    work = Path(tempfile.mkdtemp(prefix="nightshard-bench-"))
    ray_state = _start_ray(arguments, device)
    started = time.perf_counter()
    reports, all_targets = {}, []
    try:
        artifact = workloads.train_tabular_model(work / "models") if "tabular" in chosen else None
        for name in chosen:
            workload = _make_workload(name, work, sizes, artifact)
            report = _run_workload(workload, work, arguments, device, sizes["reps"], ray_state)
            if name in ("tabular", "tabular_wide"):
                report["parquet_floor"] = parquet_floor.measure(
                    workload, list(workload.model.options["feature_columns"]), work / "floor", sizes["reps"],
                    report["medians"])
            if name == "tabular":
                _add_memory_check(report, workload, work, arguments, sizes, artifact)
            if name == "image":
                _add_flop_utilisation(report, device, arguments.precision)
            reports[name] = report
            all_targets += report["targets"]
            _write_json(arguments.out / f"{name}-{device.type}.json", {"machine": machine, **report})
        scaling = (_reused_scaling(arguments, reports) if arguments.quick
                   else _scaling(work, arguments, device, sizes, artifact, chosen))
        _write_json(arguments.out / f"scaling-{device.type}.json", {"machine": machine, **scaling})
        from bench.plot import scaling_png

        scaling_png(arguments.out / f"scaling-{device.type}.png", scaling["shard_size"], scaling["threads"], machine)
    finally:
        if ray_state["started"]:
            variants.stop_ray()
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s (+ Ray start-up "
          f"{ray_state.get('startup_seconds', 0):.1f} s, not timed)\n")
    print(render_table(machine, reports, ray_state))
    return 0


def _start_ray(arguments, device) -> dict:
    if arguments.no_ray:
        return {"started": False,
                "reason": "skipped with --no-ray" if "ray" in arguments.variants else "skipped with --variants"}
    try:
        seconds = variants.start_ray(arguments.threads, 1 if device.type == "cuda" else 0)
        print(f"ray: local cluster up in {seconds:.1f} s (not in any timed region)", flush=True)
        return {"started": True, "startup_seconds": round(seconds, 2)}
    except Exception as error:  # recorded, never papered over with numbers
        return {"started": False, "reason": f"ray.init failed: {type(error).__name__}: {error}"}


def _make_workload(name: str, work: Path, sizes: dict, artifact: Path | None) -> workloads.Workload:
    if name == "text":
        return workloads.write_text(work, sizes["text_rows"])
    if name == "tabular":
        return workloads.write_tabular(work, sizes["tabular_rows"], artifact)
    if name == "tabular_wide":
        wide = workloads.build_wide_tabular_model(work / "models-wide")
        return workloads.write_tabular(work, sizes["wide_rows"], wide, name="tabular_wide")
    if name == "image":
        return workloads.write_image(work, sizes["image_rows"])
    raise SystemExit(f"unknown workload {name!r}: choose from {', '.join(WORKLOADS)}")



def _run_workload(workload, work: Path, arguments, device, reps: int, ray_state: dict) -> dict:
    print(f"\n== {workload.name} ({workloads.MODEL_DESCRIPTIONS[workload.name]}): {workload.rows} rows, "
          f"batch {workload.batch_size}, {reps} rep(s)", flush=True)
    ceiling = (variants.Ceiling(workload, arguments.device, arguments.precision, arguments.threads)
               if "ceiling" in arguments.variants else None)
    runners = {
        "ceiling": lambda rep: ceiling.run(),
        "worker": lambda rep: variants.run_worker(workload, work / workload.name, arguments.device,
                                                  arguments.precision, arguments.threads, f"worker-{rep}"),
        "naive": lambda rep: variants.run_naive(workload, work / workload.name, arguments.device,
                                                arguments.precision, arguments.threads),
        "ray": lambda rep: variants.run_ray(workload, work / workload.name, arguments.device,
                                            arguments.precision, arguments.threads, f"ray-{rep}"),
    }
    runs: dict[str, list] = {name: [] for name in VARIANTS}
    failures: dict[str, str] = {}
    if not ray_state["started"]:
        failures["ray"] = ray_state["reason"]
    for name in VARIANTS:
        if name not in arguments.variants:
            failures.setdefault(name, "skipped with --variants")
    for rep in range(reps):
        order = VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))  # ABCD, DCBA: drift cancels
        for name in order:
            if name in failures:
                continue
            try:
                run = runners[name](rep)
            except Exception as error:
                failures[name] = f"{type(error).__name__}: {str(error)[-600:]}"
                traceback.print_exc()
                continue
            runs[name].append(run)
            print(f"  rep {rep} {name:<8} steady {run.steady_rows_per_second:9.1f} rows/s  "
                  f"end-to-end {run.end_to_end_rows_per_second:9.1f} rows/s  load {run.load_seconds:5.2f} s",
                  flush=True)
    medians = {name: _medians(items) for name, items in runs.items() if items}
    report = {
        "workload": workload.name, "rows": workload.rows, "batch_size": workload.batch_size,
        "model": {"handler": workload.model.handler, "version": workload.model.version},
        "medians": medians, "runs": {name: [run.to_dict() for run in items] for name, items in runs.items()},
        "not_measured": failures,
    }
    found = targets.throughput_targets(workload.name, medians, failures, workload.rows)
    if workload.name == "image" or (workload.name == "text" and device.type == "cuda"):
        found.append(targets.gpu_busy_target(workload.name, medians.get("worker", {}).get("gpu_busy_percent"),
                                             device.type == "cuda"))
    report["targets"] = found
    return report


def _medians(runs: list) -> dict:
    def median(values):
        values = [value for value in values if value is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "steady": median([run.steady_rows_per_second for run in runs]),
        "end_to_end": median([run.end_to_end_rows_per_second for run in runs]),
        "process_wall": median([run.rows / run.process_wall_seconds if run.process_wall_seconds else None
                                for run in runs]),
        "load_seconds": median([run.load_seconds for run in runs]),
        "peak_rss_bytes": median([run.peak_rss_bytes for run in runs]),
        "gpu_busy_percent": median([run.gpu_busy_percent for run in runs]),
        "reps": len(runs),
    }


def _add_memory_check(report: dict, workload, work: Path, arguments, sizes: dict, artifact: Path) -> None:
    """Worker peak RSS on a tenth of the shard against the full shard (the main runs)."""
    small = workloads.write_tabular(work, max(1, workload.rows // 10), artifact)
    small_runs = [variants.run_worker(small, work / "memory", arguments.device, arguments.precision,
                                      arguments.threads, f"small-{rep}") for rep in range(sizes["reps"])]
    report["memory"] = {
        "rows_small": small.rows, "rows_large": workload.rows,
        "peak_rss_small_bytes": int(statistics.median(run.peak_rss_bytes for run in small_runs)),
        "peak_rss_large_bytes": report["medians"].get("worker", {}).get("peak_rss_bytes"),
        "small_runs": [run.to_dict() for run in small_runs],
    }
    report["targets"].append(targets.memory_target(report["memory"]["peak_rss_large_bytes"],
                                                   report["memory"]["peak_rss_small_bytes"],
                                                   workload.rows, small.rows))


def _add_flop_utilisation(report: dict, device, precision: str) -> None:
    """FLOPs of one image batch; MFU of ceiling and worker where the device has a peak in the table."""
    from nightshard_worker import device as devices

    probe = workloads.write_image(Path(tempfile.mkdtemp(prefix="nightshard-flops-")), workloads.IMAGE_BATCH_SIZE)
    handler = variants.make_handler(probe, device.type, precision)
    import pyarrow.parquet as pq

    prepared = handler.preprocess(pq.read_table(probe.path))
    batch = devices.to_device(prepared.tensors, handler.device)
    flops = gpu.flops_per_row(handler, batch, precision)
    name = devices.device_name(device)
    entry = {"flops_per_row": flops}
    if device.type != "cuda":
        entry["mfu"] = None
        entry["note"] = "MFU skipped: cpu run (peak table covers CUDA devices only)"
    else:
        for variant in ("ceiling", "worker"):
            rate = report["medians"].get(variant, {}).get("steady")
            entry[f"mfu_{variant}"] = (None if rate is None
                                       else gpu.model_flop_utilisation(flops, rate, name, precision))
        if entry.get("mfu_worker") is None:
            entry["note"] = f"no peak FLOP/s for {name!r} at {precision} in bench/gpu.py PEAK_FLOPS"
    report["flops"] = entry


def _scaling(work: Path, arguments, device, sizes: dict, artifact: Path | None, chosen: list[str]) -> dict:
    """rows/s against shard size (tabular worker) and against torch threads (text worker and ceiling).

    Each sweep runs only with its workload chosen: `--workloads image,tabular` (a GPU machine
    without the MiniLM weights, say) gets the shard-size sweep and no text.
    """
    print("\n== scaling sweep", flush=True)
    shard_points = []
    if artifact is not None:
        full = sizes["tabular_rows"]
        for rows in sorted({max(1, full // 10), max(1, full * 3 // 10), full}):
            workload = workloads.write_tabular(work, rows, artifact)
            run = variants.run_worker(workload, work / "scaling", arguments.device, arguments.precision,
                                      arguments.threads, f"rows-{rows}")
            shard_points.append({"rows": rows, **_rates(run)})
    thread_points = []
    if "text" not in chosen:
        print("  threads sweep skipped: text is not among --workloads", flush=True)
    else:
        text = workloads.write_text(work, sizes["sweep_text_rows"])
        for threads in [count for count in (1, 2, 4, 8, 16) if count <= (os.cpu_count() or 1)]:
            run = variants.run_worker(text, work / "scaling", arguments.device, arguments.precision, threads,
                                      f"threads-{threads}")
            ceiling = variants.Ceiling(text, arguments.device, arguments.precision, threads).run()
            thread_points.append({"threads": threads, "rows": text.rows, **_rates(run),
                                  "ceiling_rows_per_second": round(ceiling.steady_rows_per_second, 2)})
            print(f"  threads {threads}: worker {run.steady_rows_per_second:.1f} rows/s, "
                  f"ceiling {ceiling.steady_rows_per_second:.1f} rows/s", flush=True)
    import torch

    torch.set_num_threads(arguments.threads)
    return {"shard_size": shard_points, "threads": thread_points}


def _reused_scaling(arguments, reports: dict) -> dict:
    """--quick: no extra runs; the points are the shard sizes and thread count already measured."""
    shard_points = []
    if "tabular" in reports and "memory" in reports:
        memory = reports["tabular"]["memory"]
        shard_points.append({"rows": memory["rows_small"], **{k: memory["small_runs"][0][k] for k in
                             ("steady_rows_per_second", "end_to_end_rows_per_second", "peak_rss_bytes")}})
        worker = reports["tabular"]["medians"].get("worker", {})
        shard_points.append({"rows": reports["tabular"]["rows"], "steady_rows_per_second": worker.get("steady"),
                             "end_to_end_rows_per_second": worker.get("end_to_end"),
                             "peak_rss_bytes": worker.get("peak_rss_bytes")})
    thread_points = []
    if "text" in reports:
        medians = reports["text"]["medians"]
        thread_points.append({"threads": arguments.threads, "rows": reports["text"]["rows"],
                              "steady_rows_per_second": medians.get("worker", {}).get("steady"),
                              "ceiling_rows_per_second": medians.get("ceiling", {}).get("steady")})
    return {"shard_size": shard_points, "threads": thread_points}


def _rates(run) -> dict:
    return {"steady_rows_per_second": round(run.steady_rows_per_second, 2),
            "end_to_end_rows_per_second": round(run.end_to_end_rows_per_second, 2),
            "peak_rss_bytes": run.peak_rss_bytes}


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, targets.Target):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def render_table(machine: dict, reports: dict, ray_state: dict) -> str:
    """The markdown table the README carries, then one PASS/FAIL line per target."""
    def number(value, digits=1):
        return "n/a" if value is None else f"{value:,.{digits}f}"

    lines = [
        f"{machine['date'][:10]}, {machine['device']} ({machine['device_name']}), nproc {machine['nproc']}, "
        f"torch threads {machine['torch_threads']}, {machine['precision']}, medians of {machine['reps']} "
        f"interleaved rep(s); Ray start-up {ray_state.get('startup_seconds', 'n/a')} s (not timed)",
        "",
        "| workload | variant | rows | steady rows/s | end-to-end rows/s | process-wall rows/s | load s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, report in reports.items():
        for variant in VARIANTS:
            medians = report["medians"].get(variant)
            if medians is None:
                reason = report["not_measured"].get(variant, "not run")
                lines.append(f"| {name} | {variant} | {report['rows']} | not measured: {reason[:80]} | | | | |")
                continue
            rss = medians["peak_rss_bytes"]
            end_to_end = None if variant == "ceiling" else medians["end_to_end"]
            lines.append(
                f"| {name} | {variant} | {report['rows']} | {number(medians['steady'])} | {number(end_to_end)} | "
                f"{number(medians['process_wall'])} | {number(medians['load_seconds'], 2)} | "
                f"{number(None if rss is None else rss / 2**20, 0)} |"
            )
    lines.append("")
    for report in reports.values():
        for target in report["targets"]:
            lines.append(target.line())
        lines += parquet_floor_lines(report)
        if "flops" in report:
            flops = report["flops"]
            lines.append(f"{'INFO':<12} {report['workload']:<12} {'GFLOP per image':<44} "
                         f"{flops['flops_per_row'] / 1e9:6.2f}  {flops.get('note', '')}")
            for variant in ("ceiling", "worker"):
                if flops.get(f"mfu_{variant}") is not None:
                    lines.append(f"{'INFO':<12} {report['workload']:<12} {'MFU ' + variant:<44} "
                                 f"{flops[f'mfu_{variant}']:6.1%}")
    return "\n".join(lines)


def parquet_floor_lines(report: dict) -> list[str]:
    """INFO lines: how fast Parquet alone moves this shard, and what that leaves for worker / ceiling."""
    floor = report.get("parquet_floor")
    if not floor:
        return []
    name = report["workload"]
    lines = [f"{'INFO':<12} {name:<12} {'Parquet in + out, no model (rows/s)':<44} {floor['rows_per_second']:,.0f}"]
    if floor["floor_of_ceiling"] is not None:
        ratio = floor["floor_of_ceiling"]
        # Parquet and the model in rows/s: overlapped on spare cores the slower one bounds the
        # worker; on cores the model already fills their times add, 1 / (1 / floor + 1 / ceiling).
        overlapped, shared = min(1.0, ratio), ratio / (1.0 + ratio)
        lines.append(f"{'INFO':<12} {name:<12} {'Parquet floor / ceiling (steady rows/s)':<44} {ratio:6.2f}  "
                     f"(worker / ceiling can reach {overlapped:.2f} with stages overlapped on spare cores, "
                     f"{shared:.2f} where they share the model's cores)")
    if floor["worker_of_floor"] is not None:
        lines.append(f"{'INFO':<12} {name:<12} {'worker / Parquet floor (steady rows/s)':<44} "
                     f"{floor['worker_of_floor']:6.2f}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
