"""One shard, start to finish: resume, score, merge, judge, report. Returns the exit code."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import UTC, datetime

from nightshard_worker import storage
from nightshard_worker.contract import (
    EXIT_FAILED,
    EXIT_OK,
    STATUS_FAILED,
    STATUS_PREEMPTED,
    STATUS_SUCCEEDED,
    ShardResult,
    ShardSpec,
)
from nightshard_worker.errors import PreemptedError, WorkerError
from nightshard_worker.shard_lock import exclusive_shard

log = logging.getLogger("nightshard_worker")


def load_spec(spec_uri: str) -> ShardSpec:
    return ShardSpec.from_json(storage.read_bytes(spec_uri).decode())


def already_succeeded(spec: ShardSpec) -> ShardResult | None:
    """The result of an earlier attempt that finished this exact spec, if its output still exists."""
    if not storage.exists(spec.result_path):
        return None
    try:
        earlier = ShardResult.from_json(storage.read_bytes(spec.result_path).decode())
    except ValueError:
        return None
    if (earlier.status == STATUS_SUCCEEDED and earlier.spec_fingerprint == spec.fingerprint()
            and storage.exists(spec.output_path)):
        return earlier
    return None


def run_shard(spec: ShardSpec) -> int:
    """Score the shard; leaves a ShardResult at spec.result_path unless already done or held by another worker."""
    stop = threading.Event()
    from nightshard_worker.preemption import install_stop_on_sigterm

    install_stop_on_sigterm(stop)
    try:
        with exclusive_shard(spec.shard_id, spec.checkpoint_dir, stop):
            return _run_locked(spec, stop)
    except WorkerError as error:  # the lock itself: waited too long, or SIGTERM while waiting
        log.error("shard %s: %s", spec.shard_id, error)
        return error.exit_code


def _run_locked(spec: ShardSpec, stop: threading.Event) -> int:
    # Checked under the lock: an orphaned earlier attempt may have finished while this one waited.
    earlier = already_succeeded(spec)
    if earlier is not None:
        log.info("shard %s already succeeded with this spec (%s): nothing to do", spec.shard_id, spec.result_path)
        return EXIT_OK
    result = ShardResult(shard_id=spec.shard_id, status=STATUS_FAILED, spec_fingerprint=spec.fingerprint(),
                         output_path=spec.output_path, quarantine_path=spec.quarantine_path,
                         started_at=_now())
    started = time.monotonic()
    try:
        from nightshard_worker.scoring import score_shard  # torch is imported from here on

        score_shard(spec, result, stop, started)
        code = EXIT_OK
    except WorkerError as error:
        result.status = STATUS_PREEMPTED if isinstance(error, PreemptedError) else STATUS_FAILED
        result.error = "" if isinstance(error, PreemptedError) else str(error)
        log_error = log.warning if isinstance(error, PreemptedError) else log.error
        log_error("shard %s: %s", spec.shard_id, error)
        code = error.exit_code
    except Exception as error:
        log.error("shard %s failed unexpectedly:\n%s", spec.shard_id, traceback.format_exc())
        result.status = STATUS_FAILED
        result.error = f"{type(error).__name__}: {error}"
        code = EXIT_FAILED
    result.finished_at = _now()
    result.wall_seconds = round(time.monotonic() - started, 3)
    storage.write_bytes_atomic(spec.result_path, result.to_json().encode())
    from nightshard_worker.progress import summary

    log.info("\n%s", summary(result))
    return code


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

