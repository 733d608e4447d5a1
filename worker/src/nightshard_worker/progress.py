"""Telling what the worker does: a greppable progress line on a timer and a summary at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from nightshard_worker.contract import ShardResult

log = logging.getLogger("nightshard_worker.progress")


class ProgressReporter(threading.Thread):
    """Logs `progress shard=... rows=done/total pct rate eta queues=...` every interval."""

    def __init__(self, *, shard_id: str, total_rows: int, rows_done: Callable[[], int],
                 queue_depths: Callable[[], str], interval_seconds: float, resumed_rows: int,
                 tokens_done: Callable[[], int] | None = None):
        super().__init__(name="progress", daemon=True)
        self.shard_id = shard_id
        self.total_rows = total_rows
        self.rows_done = rows_done
        self.queue_depths = queue_depths
        self.interval_seconds = max(0.1, interval_seconds)
        self.resumed_rows = resumed_rows
        self.tokens_done = tokens_done  # llm handler: tokens scored this attempt
        self.started = time.monotonic()
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.wait(self.interval_seconds):
            log.info(self.line())

    def stop(self) -> None:
        self._finished.set()

    def line(self) -> str:
        done = self.rows_done()
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (done - self.resumed_rows) / elapsed
        share = 100.0 * done / self.total_rows if self.total_rows else 100.0
        eta = f"{(self.total_rows - done) / rate:.0f}s" if rate > 0 else "unknown"
        tokens = f" tokens={self.tokens_done()} {self.tokens_done() / elapsed:.1f}tokens/s" if self.tokens_done else ""
        return (f"progress shard={self.shard_id} rows={done}/{self.total_rows} {share:.1f}% "
                f"rate={rate:.1f}rows/s{tokens} eta={eta} queues={self.queue_depths()}")


def summary(result: ShardResult) -> str:
    """One screen an on-call engineer reads first."""
    scored_rate = (result.rows_in - result.resumed_from_rows) / result.wall_seconds if result.wall_seconds else 0.0
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.stage_seconds.items())
    lines = [
        f"summary shard={result.shard_id} status={result.status}",
        f"  rows: in {result.rows_in}, out {result.rows_out}, quarantined {result.rows_quarantined}, "
        f"resumed from {result.resumed_from_rows} (attempt {result.attempts})",
        f"  time: {result.wall_seconds:.1f}s wall, {scored_rate:.1f} rows/s this attempt; stages: {stages}",
        f"  device: {result.device} ({result.device_name}), peak rss {result.peak_rss_bytes / 2**20:.0f} MiB, "
        f"peak device memory {result.peak_device_memory_bytes / 2**20:.0f} MiB",
        f"  output: {result.output_path} ({result.output_bytes} bytes, sha256 {result.output_sha256[:16]})",
        f"  quarantine: {result.quarantine_path}",
    ]
    if result.input_tokens or result.output_tokens:
        token_rate = (result.input_tokens + result.output_tokens) / result.wall_seconds if result.wall_seconds else 0.0
        lines.insert(3, f"  tokens: input {result.input_tokens}, output {result.output_tokens}, "
                        f"{token_rate:.1f} tokens/s over the shard's wall time")
    if result.error:
        lines.append(f"  error: {result.error}")
    return "\n".join(lines)
