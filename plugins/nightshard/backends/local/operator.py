"""`infer` on the local backend: the worker CLI as a subprocess, its log streamed into the task log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from nightshard.backends.worker_exit import (
    ShardFailed,
    ShardRejected,
    explain_exit,
    is_deterministic_failure,
    is_preemption,
    read_shard_result,
)
from nightshard.handoffs import ShardResultDocument, ShardTicket

# The worker commits and exits within 10 s of SIGTERM; this leaves a slow commit room to spare.
WORKER_STOP_GRACE_SECONDS = 45


def worker_command(spec_uri: str) -> list[str]:
    """The same CLI a GKE pod runs, from the interpreter's own environment."""
    script = Path(sys.executable).with_name("nightshard-worker")
    if script.exists():
        return [str(script), "run", "--spec", spec_uri]
    return [sys.executable, "-m", "nightshard_worker.cli", "run", "--spec", spec_uri]


class LocalWorkerOperator(BaseOperator):
    """Scores one shard ticket with `nightshard-worker run` and returns its ShardResult as XCom."""

    template_fields = ("ticket",)
    ui_color = "#e8f4ea"

    def __init__(self, *, ticket: ShardTicket, max_preemptions: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self.ticket = ticket
        self.max_preemptions = max_preemptions
        self._process: subprocess.Popen[str] | None = None
        self._killed = False  # on_kill's SIGTERM also ends in exit 75: that one is not rerun

    def execute(self, context: Any) -> ShardResultDocument:
        ticket = self.ticket
        shard = ticket["shard_id"]
        if ticket.get("already_committed"):
            self.log.info("shard %s was committed by an earlier attempt: reusing %s", shard, ticket["result_uri"])
            return read_shard_result(ticket["result_uri"])
        command = worker_command(ticket["spec_uri"])
        self.log.info("shard %s (%s rows): %s", shard, ticket["rows"], " ".join(command))
        preemptions = 0
        code = self._run_worker(command, shard)
        while is_preemption(code) and preemptions < self.max_preemptions and not self._killed:
            # Preempted (exit 75, progress committed): run again in this try, retries untouched.
            preemptions += 1
            self.log.warning(
                "shard %s: worker preempted; the retry resumes from the last checkpoint "
                "(preemption %d of at most %d in this try)", shard, preemptions, self.max_preemptions,
            )
            code = self._run_worker(command, shard)
        if code != 0:
            cause, next_step = explain_exit(code)
            failure = f"shard {shard} failed: {cause} (exit {code}). Spec: {ticket['spec_uri']}."
            if is_deterministic_failure(code):
                raise ShardRejected(f"{failure} Not retried: a retry would fail the same way.", next_step=next_step)
            raise ShardFailed(failure, next_step=next_step)
        result = read_shard_result(ticket["result_uri"])
        self.log.info("shard %s: %s", shard, _one_line_summary(result))
        return result

    def _run_worker(self, command: list[str], shard: str) -> int:
        """One worker process, its output streamed into the task log; returns its exit code."""
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=environment,
        )
        try:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                self.log.info("[worker %s] %s", shard, line.rstrip())
            code = self._process.wait()
        finally:
            self._stop_worker()
        return code

    def on_kill(self) -> None:
        self._killed = True
        self._stop_worker()

    def _stop_worker(self) -> None:
        """SIGTERM lets the worker commit its progress; SIGKILL only if it overruns its grace."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.log.warning("stopping worker pid %s (SIGTERM, %ss grace)", process.pid, WORKER_STOP_GRACE_SECONDS)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WORKER_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _one_line_summary(result: ShardResultDocument) -> str:
    return (
        f"rows in {result['rows_in']}, out {result['rows_out']}, quarantined {result['rows_quarantined']}, "
        f"{result['wall_seconds']:.1f}s on {result['device']}"
    )
