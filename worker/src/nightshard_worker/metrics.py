"""Prometheus metrics of one worker process, on their own registry, served and pushed."""

from __future__ import annotations

import logging
import resource
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway, start_http_server

from nightshard_worker import tuning

log = logging.getLogger(__name__)

STAGES = ("read", "preprocess", "predict", "write")
PUSH_JOB = "nightshard_worker"


class StageClock:
    """Seconds spent per stage, summed across threads (preprocess time is CPU time of all decoders)."""

    def __init__(self, metrics: WorkerMetrics | None = None):
        self._seconds = {stage: 0.0 for stage in STAGES}
        self._lock = threading.Lock()
        self._metrics = metrics

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds
        if self._metrics is not None:
            self._metrics.stage_seconds.labels(stage=stage).inc(seconds)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {stage: round(seconds, 3) for stage, seconds in self._seconds.items()}


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rows = Counter("nightshard_worker_rows", "Rows finished, by outcome",
                            ["outcome"], registry=self.registry)
        self.batches = Counter("nightshard_worker_batches", "Forward passes run", registry=self.registry)
        self.batch_seconds = Histogram("nightshard_worker_batch_seconds", "Seconds per forward pass",
                                       buckets=tuning.BATCH_SECONDS_BUCKETS, registry=self.registry)
        self.stage_seconds = Counter("nightshard_worker_stage_seconds", "Seconds spent per stage",
                                     ["stage"], registry=self.registry)
        self.gpu_memory = Gauge("nightshard_worker_gpu_memory_bytes", "Device memory allocated by torch",
                                registry=self.registry)
        self.gpu_utilization = Gauge("nightshard_worker_gpu_utilization_ratio",
                                     "GPU busy share from NVML (absent without NVML)", registry=self.registry)
        self.peak_rss = Gauge("nightshard_worker_peak_rss_bytes", "Peak resident memory of the worker",
                              registry=self.registry)
        self.tokens = Counter("nightshard_worker_tokens", "LLM tokens processed, by kind (input, output)",
                              ["kind"], registry=self.registry)
        for outcome in ("scored", "quarantined"):
            self.rows.labels(outcome=outcome)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)

    def serve(self, port: int) -> int:
        """Serve /metrics on `port` (0 picks a free one); returns the bound port."""
        server, _thread = start_http_server(port, registry=self.registry)
        bound = server.server_address[1]
        log.info("metrics served on port %d", bound)
        return bound

    def push(self, gateway_url: str, *, pipeline: str, run_id: str, shard_id: str) -> None:
        """Push once at the end; a failure is a warning, the shard is already committed."""
        try:
            push_to_gateway(gateway_url, job=PUSH_JOB, registry=self.registry,
                            grouping_key={"pipeline": pipeline, "run_id": run_id, "shard": shard_id},
                            timeout=tuning.PUSHGATEWAY_TIMEOUT_SECONDS)
            log.info("metrics pushed to %s", gateway_url)
        except Exception as error:  # monitoring must never fail a shard
            log.warning("metrics push to %s failed, shard result unaffected: %s", gateway_url, error)


def peak_rss_bytes() -> int:
    """This process's own memory high-water mark (VmHWM), which the kernel keeps: no sampling gaps.

    Not ru_maxrss: Linux carries it over from the parent across fork+exec, so a worker started by a
    big Airflow process would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
