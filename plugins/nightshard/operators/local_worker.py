"""`infer` on the local backend: the worker CLI as a subprocess, its log streamed into the task log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from nightshard import storage
from nightshard.worker_exit import explain_exit, retry_can_help

# Matches the worker's own SIGTERM bound (it commits and exits within 30 s) with room to spare.
WORKER_STOP_GRACE_SECONDS = 45


class ShardFailed(AirflowException):
    """A shard's worker failed; the message carries shard, cause and next step."""


class ShardRejected(ShardFailed, AirflowFailException):
    """A shard failed in a way a retry reproduces (its input does not fit, too many bad rows): no retry."""


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

    def __init__(self, *, ticket: dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.ticket = ticket
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        ticket = self.ticket
        shard = ticket["shard_id"]
        if ticket.get("already_committed"):
            self.log.info("shard %s was committed by an earlier attempt: reusing %s", shard, ticket["result_uri"])
            return storage.read_json(ticket["result_uri"])
        command = worker_command(ticket["spec_uri"])
        self.log.info("shard %s (%s rows): %s", shard, ticket["rows"], " ".join(command))
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
        if code != 0:
            cause, next_step = explain_exit(code)
            failure = ShardFailed if retry_can_help(code) else ShardRejected
            raise failure(
                f"shard {shard} failed: {cause} (exit {code}). Next step: {next_step}. "
                f"Spec: {ticket['spec_uri']}"
            )
        result = storage.read_json(ticket["result_uri"])
        self.log.info("shard %s: %s", shard, _one_line_summary(result))
        return result

    def on_kill(self) -> None:
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


def _one_line_summary(result: dict[str, Any]) -> str:
    return (
        f"rows in {result['rows_in']}, out {result['rows_out']}, quarantined {result['rows_quarantined']}, "
        f"{result['wall_seconds']:.1f}s on {result['device']}"
    )
