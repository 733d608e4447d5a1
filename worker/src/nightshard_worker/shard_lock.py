"""One worker per shard at a time, on a local filesystem.

A task whose scheduler died can be retried while the first attempt's worker still runs (an orphan: its
supervisor is gone, the worker is not). Two workers committing chunks of one shard would interleave
progress records, so the second waits on an advisory lock beside the checkpoint until the first exits:
then it finds the shard finished (nothing to do) or resumes after the orphan's last commit.
The kernel drops the lock with its holder, so a worker killed with SIGKILL never leaves it stuck.

Object stores have no such lock; there, one pod per shard attempt is the pod operator's promise.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from nightshard_worker import storage
from nightshard_worker.errors import PreemptedError, ShardBusyError

log = logging.getLogger(__name__)

# Long enough for an orphaned attempt to finish a large shard; the task's execution timeout bounds it too.
LOCK_WAIT_SECONDS = 6 * 3600
# How often a waiting worker says so in its log, so the task log never goes silent.
WAITING_LOG_INTERVAL_SECONDS = 60


def lock_path(checkpoint_dir: str) -> str:
    """Beside the checkpoint folder, not in it: a checkpoint reset removes that folder whole."""
    return storage.resolve(checkpoint_dir)[1].rstrip("/") + ".lock"


@contextmanager
def exclusive_shard(shard_id: str, checkpoint_dir: str, stop: threading.Event,
                    wait_seconds: float = LOCK_WAIT_SECONDS, poll_seconds: float = 1.0) -> Iterator[None]:
    """Hold the shard's lock for the block; waits while another live worker holds it."""
    if not storage.is_local(checkpoint_dir):
        yield
        return
    path = lock_path(checkpoint_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(descriptor, path, shard_id, stop, wait_seconds, poll_seconds)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "since": time.time()}).encode())
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _acquire(descriptor: int, path: str, shard_id: str, stop: threading.Event, wait_seconds: float,
             poll_seconds: float) -> None:
    started = time.monotonic()
    last_said = None
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if last_said is not None:
                log.info("shard %s: the other worker is gone after %.0f s; going on", shard_id,
                         time.monotonic() - started)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        if waited > wait_seconds:
            raise ShardBusyError(
                f"shard {shard_id} is still being scored by another worker ({_holder(path)}) after "
                f"{waited:.0f} s: stop that process (or let it finish), then retry this task")
        if stop.is_set():
            raise PreemptedError(f"SIGTERM while waiting for the other worker on shard {shard_id}")
        if last_said is None or time.monotonic() - last_said >= WAITING_LOG_INTERVAL_SECONDS:
            log.warning("shard %s is being scored by another worker (%s), likely an earlier attempt whose "
                        "task supervisor died; waiting for it to finish or exit, then resuming from its "
                        "checkpoint", shard_id, _holder(path))
            last_said = time.monotonic()
        time.sleep(poll_seconds)


def _holder(path: str) -> str:
    try:
        with open(path) as lock_file:
            holder = json.loads(lock_file.read() or "{}")
        return f"pid {holder['pid']} on {holder['host']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
