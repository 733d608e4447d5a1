"""Checkpoint cadence: a commit per step against the default interval, on local disk and on GCS.

On GKE the worker's checkpoints live in the output bucket, where a commit is three object puts
(output chunk, quarantine chunk, progress record) instead of three fsyncs. A cheap model scores a
step in milliseconds, so a commit per step can set its pace. This runs `nightshard-worker` on the
demo risk shard with `runtime.commit_interval_seconds` 0 (a commit per step) and at its default,
interleaved, once with the checkpoint on local disk and once on a real GCS API on loopback
(PyPI's gcp-storage-emulator, as the tests use it), and prints default / per-step steady rows/s.

    PYTHONPATH=plugins:. .venv/bin/python -m bench.commit_cadence [--rows 200000,2000000] [--reps 3]

Loopback flatters GCS (no network round trip), so the GCS ratios here are a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import variants, workloads
from nightshard_worker.contract import RuntimeSpec

sys.path.insert(0, str(variants.REPO_ROOT / "tests"))  # the emulator starter the tests use
from gcs_emulator import gcs_emulator  # noqa: E402

BUCKET = "nightshard-bench"
CADENCES = {"per step": {"commit_interval_seconds": 0.0}, "default": {}}


def measure(workload: workloads.Workload, folder: Path, store: str, reps: int, threads: int) -> dict:
    """Median steady seconds per cadence; the two cadences alternate so machine drift hits both."""
    steady: dict[str, list[float]] = {name: [] for name in CADENCES}
    for rep in range(reps):
        for name in (list(CADENCES) if rep % 2 == 0 else list(reversed(CADENCES))):
            workload.runtime = CADENCES[name]
            tag = f"{store}-{name.replace(' ', '-')}-{rep}"
            checkpoint = f"gs://{BUCKET}/checkpoints/{tag}" if store == "gcs" else None
            run = variants.run_worker(workload, folder, "cpu", "fp32", threads, tag, checkpoint_dir=checkpoint)
            steady[name].append(run.steady_seconds)
    return {name: {"median_steady_seconds": round(statistics.median(values), 3),
                   "steady_seconds": [round(value, 3) for value in values]} for name, values in steady.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="200000,2000000", help="demo risk shard sizes, comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "commit_cadence-cpu.json")
    arguments = parser.parse_args(argv)
    default_interval = RuntimeSpec().commit_interval_seconds
    started = time.perf_counter()
    report = {"date": time.strftime("%Y-%m-%d"), "default_commit_interval_seconds": default_interval,
              "threads": arguments.threads, "reps": arguments.reps, "shards": []}
    with tempfile.TemporaryDirectory(prefix="nightshard-bench-cadence-") as temp:
        work = Path(temp)
        artifact = workloads.train_tabular_model(work / "model")
        with gcs_emulator(work / "gcs-emulator.log") as url:
            os.environ["STORAGE_EMULATOR_HOST"] = url  # gcsfs here and in the worker processes
            import fsspec

            fsspec.filesystem("gs", token="anon").mkdir(BUCKET)
            print(f"{'rows':>9} {'checkpoint':<10} {'per step s':>10} {'default s':>10} {'default / per step rows/s':>26}")
            for rows in [int(value) for value in arguments.rows.split(",")]:
                workload = workloads.write_tabular(work, rows, artifact)
                for store in ("local", "gcs"):
                    medians = measure(workload, work / "runs", store, arguments.reps, arguments.threads)
                    ratio = medians["per step"]["median_steady_seconds"] / medians["default"]["median_steady_seconds"]
                    report["shards"].append({"rows": rows, "checkpoint": store, **medians, "ratio": round(ratio, 2)})
                    print(f"{rows:>9} {store:<10} {medians['per step']['median_steady_seconds']:>10.3f} "
                          f"{medians['default']['median_steady_seconds']:>10.3f} {ratio:>26.2f}", flush=True)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {arguments.out} ({report['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
