"""The naive loop, run as a user's script runs: a fresh process, timed like the worker.

pandas reads the whole file; fixed batches in file order; the handler's `preprocess` per batch
(padding to the batch's longest, no length sorting); `predict`; `DataFrame.to_parquet`. One thread
of control, no overlap.

It runs in its own interpreter because that is what the worker is measured as: a process whose
clock starts before torch is imported and whose first forward pass is cold (oneDNN primitives,
TorchScript's profiling runs, CUDA context). Run inside the benchmark's process, after the ceiling
has warmed the same model, the loop got those for free: the worker's first two EfficientNet-Lite0
batches cost 2.2 s on the 2-core build machine, a third of a 64-image run.

    python -m bench.naive --workload workload.json --output out.parquet --device cpu --precision fp32 --threads 2

prints one JSON line: load_seconds (imports + model load), steady_seconds (read through write),
end_to_end_seconds (their sum).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULT_PREFIX = "naive-result "


def workload_document(workload) -> str:
    """What the child needs of a bench.workloads.Workload, as JSON."""
    from dataclasses import asdict

    return json.dumps({"name": workload.name, "path": str(workload.path), "rows": workload.rows,
                       "model": asdict(workload.model), "batch_size": workload.batch_size})


def score(document: dict, output: Path, device: str, precision: str, threads: int, started: float) -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import torch

    from bench.model_calls import forward_on_host, load_handler
    from bench.workloads import ID_COLUMN
    from nightshard_worker import device as devices

    torch.set_num_threads(threads)
    handler = load_handler(document["model"], device, precision)
    loaded = time.perf_counter()
    frame = pd.read_parquet(document["path"])
    batch_size = document["batch_size"]
    collected: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(frame), batch_size):
        batch_table = pa.Table.from_pandas(frame.iloc[start:start + batch_size], preserve_index=False)
        prepared = handler.preprocess(batch_table)  # padding to this batch's longest, file order
        outputs = forward_on_host(handler, devices.to_device(prepared.tensors, handler.device), precision)
        for name, values in outputs.items():
            collected.setdefault(name, []).append(values)
    result = pd.DataFrame({ID_COLUMN: frame[ID_COLUMN].to_numpy()})
    for name, parts in collected.items():
        values = np.concatenate(parts)
        result[name] = list(values) if values.ndim > 1 else values
    output.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(output, engine="pyarrow", index=False)
    ended = time.perf_counter()
    return {"rows": len(result), "load_seconds": loaded - started, "steady_seconds": ended - loaded,
            "end_to_end_seconds": ended - started}


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # before numpy, pandas and torch are imported, as the worker's clock
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", type=Path, required=True, help="JSON from workload_document()")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args(argv)
    document = json.loads(arguments.workload.read_text())
    timings = score(document, arguments.output, arguments.device, arguments.precision, arguments.threads, started)
    print(RESULT_PREFIX + json.dumps(timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
