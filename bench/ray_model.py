"""The worker's handler as a Ray Data callable class: model loaded once in __init__, a batch per call."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa


class HandlerBatchScorer:
    def __init__(self, model: dict, device: str, precision: str, threads: int, load_report: str):
        import torch

        from bench.model_calls import load_handler

        torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 for a 1-CPU actor; match the others
        started = time.perf_counter()
        self.handler = load_handler(model, device, precision)
        self.precision = precision
        Path(load_report).write_text(json.dumps({"load_seconds": time.perf_counter() - started}))

    def __call__(self, batch: pa.Table) -> pa.Table:
        from bench.model_calls import forward_on_host
        from nightshard_worker import device as devices

        prepared = self.handler.preprocess(batch)  # padding to this batch's longest, no sorting
        host = forward_on_host(self.handler, devices.to_device(prepared.tensors, self.handler.device),
                               self.precision)
        arrays = self.handler.to_arrow(host)
        names = [output_field.name for output_field in self.handler.output_fields]
        return pa.Table.from_arrays([batch.column("id"), *arrays], names=["id", *names])
