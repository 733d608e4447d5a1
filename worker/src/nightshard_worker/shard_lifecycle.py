"""One shard, start to finish, in the order it happens; returns the worker's exit code.

lock -> already done? -> resume -> score -> merge -> bad-row verdict -> result file.

torch is imported only once scoring really starts (in `_score`): a shard found done, or one whose
lock wait ends in SIGTERM, exits without paying for it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import UTC, datetime

import pyarrow as pa

from nightshard_worker import output_files, storage
from nightshard_worker.checkpoint import Checkpoint, Progress
from nightshard_worker.contract import (
    EXIT_FAILED,
    EXIT_OK,
    STATUS_FAILED,
    STATUS_PREEMPTED,
    STATUS_SUCCEEDED,
    PredictionHistogram,
    ShardResult,
    ShardSpec,
)
from nightshard_worker.errors import PreemptedError, TooManyBadRowsError, WorkerError
from nightshard_worker.id_index import write_index
from nightshard_worker.metrics import StageClock, WorkerMetrics, peak_rss_bytes
from nightshard_worker.preemption import install_stop_on_sigterm
from nightshard_worker.progress import ProgressReporter, summary
from nightshard_worker.reader import check_inputs
from nightshard_worker.shard_lock import exclusive_shard

log = logging.getLogger("nightshard_worker")


def load_spec(spec_uri: str) -> ShardSpec:
    return ShardSpec.from_json(storage.read_bytes(spec_uri).decode())


def run_shard(spec: ShardSpec) -> int:
    """Score the shard; leaves a ShardResult at spec.result_path unless already done or held by another worker."""
    stop = threading.Event()
    install_stop_on_sigterm(stop)
    try:
        with exclusive_shard(spec.shard_id, spec.checkpoint_dir, stop):
            # Checked under the lock: an orphaned earlier attempt may have finished while this one waited.
            if already_succeeded(spec) is not None:
                log.info("shard %s already succeeded with this spec (%s): nothing to do", spec.shard_id,
                         spec.result_path)
                return EXIT_OK
            result = ShardResult(shard_id=spec.shard_id, status=STATUS_FAILED, spec_fingerprint=spec.fingerprint(),
                                 output_path=spec.output_path, quarantine_path=spec.quarantine_path,
                                 started_at=_now())
            started = time.monotonic()
            try:
                _score(spec, result, stop, started)
                code = EXIT_OK
            except WorkerError as error:
                preempted = isinstance(error, PreemptedError)
                result.status = STATUS_PREEMPTED if preempted else STATUS_FAILED
                result.error = "" if preempted else str(error)
                (log.warning if preempted else log.error)("shard %s: %s", spec.shard_id, error)
                code = error.exit_code
            except Exception as error:
                log.error("shard %s failed unexpectedly:\n%s", spec.shard_id, traceback.format_exc())
                result.status = STATUS_FAILED
                result.error = f"{type(error).__name__}: {error}"
                code = EXIT_FAILED
            result.finished_at = _now()
            result.wall_seconds = round(time.monotonic() - started, 3)
            storage.write_bytes_atomic(spec.result_path, result.to_json().encode())
            log.info("\n%s", summary(result))
            return code
    except WorkerError as error:  # the lock itself: waited too long, or SIGTERM while waiting
        log.error("shard %s: %s", spec.shard_id, error)
        return error.exit_code


def already_succeeded(spec: ShardSpec) -> ShardResult | None:
    """The result of an earlier attempt that finished this exact spec, if its output still exists."""
    if not storage.exists(spec.result_path):
        return None
    try:
        earlier = ShardResult.from_json(storage.read_bytes(spec.result_path).decode())
    except ValueError:
        return None
    return earlier if earlier.completes(spec) and storage.exists(spec.output_path) else None


def _score(spec: ShardSpec, result: ShardResult, stop: threading.Event, started: float) -> None:
    """Resume, score, merge and judge the shard, filling `result` as it goes; raises a WorkerError
    subclass for every non-success. `started` (time.monotonic()) goes into the attempt ledger."""
    # torch is imported from here on.
    from nightshard_worker import device as devices
    from nightshard_worker.batch_scorer import BatchScorer
    from nightshard_worker.handlers import handler_class
    from nightshard_worker.overlapped_stages import OverlappedStages

    runtime = spec.runtime
    devices.check_precision(runtime.precision)
    device = devices.resolve_device(runtime.device)
    devices.set_cpu_threads(runtime.threads)
    result.device, result.device_name = device.type, devices.device_name(device)
    metrics = WorkerMetrics()
    clock = StageClock(metrics)
    if runtime.metrics_port is not None:
        metrics.serve(runtime.metrics_port)
    try:
        handler = handler_class(spec.model.handler)(model_spec=spec.model, device=device, precision=runtime.precision)
        if runtime.compile:
            handler.compile()
        id_type, units = check_inputs(spec, handler.required_columns)
        id_field = pa.field(spec.id_column, id_type)
        total_rows = sum(unit.rows for unit in units)
        result.output_columns = {spec.id_column: str(id_type),
                                 **{field.name: str(field.type) for field in handler.output_fields}}

        checkpoint = Checkpoint(directory=spec.checkpoint_dir, fingerprint=spec.fingerprint(),
                                histogram_bins=len(handler.drift_edges) - 1, attempt_started=started)
        progress = checkpoint.start()  # resumes after the last commit of an earlier attempt with this spec
        result.attempts = progress.attempts
        result.earlier_attempts_seconds = checkpoint.earlier_attempts_seconds()
        result.resumed_from_rows = progress.rows_done
        log.info("shard %s: %d rows in %d row groups, handler %s on %s (%s), %d row groups already committed",
                 spec.shard_id, total_rows, len(units), spec.model.handler, device, runtime.precision,
                 progress.units_committed)

        counts_tokens = any(f.name == "input_tokens" for f in handler.output_fields)
        scorer = BatchScorer(handler=handler, runtime=runtime, device=device, metrics=metrics, clock=clock, stop=stop)
        stages = OverlappedStages(spec=spec, handler=handler, scorer=scorer, units=units,
                                  start_unit=progress.units_committed, id_field=id_field, checkpoint=checkpoint,
                                  metrics=metrics, clock=clock, stop=stop)
        reporter = ProgressReporter(
            shard_id=spec.shard_id, total_rows=total_rows,
            rows_done=lambda: result.resumed_from_rows + stages.rows_scored_this_attempt,
            queue_depths=stages.queue_depths, interval_seconds=runtime.progress_interval_seconds,
            resumed_rows=progress.rows_done,
            tokens_done=(lambda: stages.tokens_this_attempt) if counts_tokens else None)
        reporter.start()
        try:
            completed = stages.run()
        finally:
            reporter.stop()
        _fill_counts(result, progress, handler.drift_edges)
        if not completed:
            raise PreemptedError(
                f"stopped by SIGTERM after committing {progress.units_committed}/{len(units)} row groups "
                f"({progress.rows_done}/{total_rows} rows); a retry with the same spec resumes there"
            )
        log.info(reporter.line())

        _merge_and_judge(spec, result, checkpoint, progress, id_field, handler.output_fields)
        if handler.truncation_column:
            result.rows_truncated = output_files.column_sums(spec.output_path, [handler.truncation_column])[0]
        if spec.id_index_buckets:
            log.info("shard %s: ids indexed in %d hash buckets at %s", spec.shard_id, spec.id_index_buckets,
                     write_index(spec))
        if counts_tokens:
            # Summed from the merged file, so rows committed by an earlier attempt count too.
            result.input_tokens, result.output_tokens = output_files.column_sums(
                spec.output_path, ["input_tokens", "output_tokens"])
        result.status = STATUS_SUCCEEDED
        checkpoint.remove()
    finally:
        result.stage_seconds = clock.snapshot()
        result.peak_rss_bytes = peak_rss_bytes()
        result.peak_device_memory_bytes = devices.peak_device_memory_bytes(device)
        metrics.peak_rss.set(result.peak_rss_bytes)
        metrics.gpu_memory.set(devices.current_device_memory_bytes(device))
        utilization = devices.utilization_ratio(device)
        if utilization is not None:
            metrics.gpu_utilization.set(utilization)
        if runtime.pushgateway_url:
            metrics.push(runtime.pushgateway_url, pipeline=spec.pipeline, run_id=spec.run_id, shard_id=spec.shard_id)


def _merge_and_judge(spec: ShardSpec, result: ShardResult, checkpoint: Checkpoint, progress: Progress,
                     id_field: pa.Field, output_fields: tuple[pa.Field, ...]) -> None:
    """Publish the quarantine, refuse the shard if too many rows are in it, else publish the output."""
    bad_fraction = progress.rows_quarantined / progress.rows_done if progress.rows_done else 0.0
    output_files.merge_chunks(checkpoint.quarantine_chunks(), output_files.quarantine_schema(id_field),
                              spec.quarantine_path)
    if bad_fraction > spec.runtime.max_bad_row_fraction:
        raise TooManyBadRowsError(
            f"{progress.rows_quarantined} of {progress.rows_done} rows quarantined ({bad_fraction:.1%}), above "
            f"validation.max_bad_row_fraction_per_shard {spec.runtime.max_bad_row_fraction:.1%}; the output was "
            f"not published. Inspect the reasons in {spec.quarantine_path}"
        )
    result.output_bytes, result.output_sha256 = output_files.merge_chunks(
        checkpoint.output_chunks(), output_files.output_schema(id_field, output_fields), spec.output_path)


def _fill_counts(result: ShardResult, progress: Progress, drift_edges: tuple[float, ...]) -> None:
    result.rows_out = progress.rows_out
    result.rows_quarantined = progress.rows_quarantined
    result.rows_in = progress.rows_done
    result.histogram = PredictionHistogram(edges=tuple(drift_edges), counts=tuple(progress.histogram_counts))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
