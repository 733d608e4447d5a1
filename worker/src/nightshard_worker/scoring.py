"""The torch side of a shard run: device, handler, pipeline, merge and the bad-row verdict."""

from __future__ import annotations

import logging
import threading

import pyarrow as pa
import torch

from nightshard_worker import device as devices
from nightshard_worker import output_files
from nightshard_worker.checkpoint import Checkpoint
from nightshard_worker.contract import STATUS_SUCCEEDED, PredictionHistogram, ShardResult, ShardSpec
from nightshard_worker.errors import PreemptedError, TooManyBadRowsError
from nightshard_worker.handlers import handler_class
from nightshard_worker.metrics import StageClock, WorkerMetrics, peak_rss_bytes
from nightshard_worker.overlapped_stages import OverlappedStages
from nightshard_worker.batch_scorer import BatchScorer
from nightshard_worker.progress import ProgressReporter
from nightshard_worker.reader import check_inputs

log = logging.getLogger("nightshard_worker")

try:
    # Imported at start-up on purpose: where pandas is installed, pyarrow imports it lazily the first
    # time pa.array() sees a numpy array, i.e. in the middle of the first row group, on the predict
    # thread, holding the import lock for ~0.5 s while the device waits.
    import pandas  # noqa: F401
except ImportError:  # the worker image has no pandas, and then pyarrow has nothing to import later
    pass


def score_shard(spec: ShardSpec, result: ShardResult, stop: threading.Event, started: float | None = None) -> None:
    """Fill `result` as the shard goes; raises WorkerError subclasses for every non-success.

    `started` (time.monotonic()) is when this attempt began: its seconds go into the attempt ledger."""
    runtime = spec.runtime
    devices.check_precision(runtime.precision)
    device = devices.resolve_device(runtime.device)
    if runtime.threads:
        torch.set_num_threads(runtime.threads)
    result.device, result.device_name = device.type, devices.device_name(device)
    metrics = WorkerMetrics()
    clock = StageClock(metrics)
    if runtime.metrics_port is not None:
        metrics.serve(runtime.metrics_port)
    try:
        _score(spec, result, stop, device, metrics, clock, started)
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
            metrics.push(runtime.pushgateway_url, spec.pipeline, spec.run_id, spec.shard_id)


def _score(spec: ShardSpec, result: ShardResult, stop: threading.Event, device: torch.device,
           metrics: WorkerMetrics, clock: StageClock, started: float | None) -> None:
    runtime = spec.runtime
    handler = handler_class(spec.model.handler)(spec.model, device, runtime.precision)
    if runtime.compile:
        handler.compile()
    id_type, units = check_inputs(spec, handler.required_columns)
    id_field = pa.field(spec.id_column, id_type)
    total_rows = sum(unit.rows for unit in units)
    result.output_columns = {spec.id_column: str(id_type),
                             **{field.name: str(field.type) for field in handler.output_fields}}
    checkpoint = Checkpoint(spec.checkpoint_dir, spec.fingerprint(), len(handler.drift_edges) - 1, started)
    progress = checkpoint.start()
    result.attempts = progress.attempts
    result.earlier_attempts_seconds = checkpoint.earlier_attempts_seconds()
    result.resumed_from_rows = progress.rows_done
    log.info("shard %s: %d rows in %d row groups, handler %s on %s (%s), %d row groups already committed",
             spec.shard_id, total_rows, len(units), spec.model.handler, device, runtime.precision,
             progress.units_committed)
    scorer = BatchScorer(handler, runtime, device, metrics, clock, stop)
    pipeline = OverlappedStages(spec, handler, scorer, units, progress.units_committed, id_field,
                             checkpoint, metrics, clock, stop)
    reporter = ProgressReporter(spec.shard_id, total_rows,
                                lambda: result.resumed_from_rows + pipeline.rows_scored_this_attempt,
                                pipeline.queue_depths, runtime.progress_interval_seconds, progress.rows_done,
                                tokens_done=(lambda: pipeline.tokens_this_attempt)
                                if any(f.name == "input_tokens" for f in handler.output_fields) else None)
    reporter.start()
    try:
        completed = pipeline.run()
    finally:
        reporter.stop()
    _fill_counts(result, progress, handler)
    if not completed:
        raise PreemptedError(
            f"stopped by SIGTERM after committing {progress.units_committed}/{len(units)} row groups "
            f"({progress.rows_done}/{total_rows} rows); a retry with the same spec resumes there"
        )
    log.info(reporter.line())
    bad_fraction = progress.rows_quarantined / progress.rows_done if progress.rows_done else 0.0
    quarantine_schema = output_files.quarantine_schema(id_field)
    output_files.merge_chunks(checkpoint.quarantine_chunks(), quarantine_schema, spec.quarantine_path)
    if bad_fraction > runtime.max_bad_row_fraction:
        raise TooManyBadRowsError(
            f"{progress.rows_quarantined} of {progress.rows_done} rows quarantined ({bad_fraction:.1%}), above "
            f"validation.max_bad_row_fraction_per_shard {runtime.max_bad_row_fraction:.1%}; the output was not published. "
            f"Inspect the reasons in {spec.quarantine_path}"
        )
    output_schema = output_files.output_schema(id_field, handler.output_fields)
    result.output_bytes, result.output_sha256 = output_files.merge_chunks(
        checkpoint.output_chunks(), output_schema, spec.output_path)
    if handler.truncation_column:
        result.rows_truncated = output_files.column_sums(spec.output_path, [handler.truncation_column])[0]
    if spec.id_index_buckets:
        from nightshard_worker.id_index import write_index

        log.info("shard %s: ids indexed in %d hash buckets at %s", spec.shard_id, spec.id_index_buckets,
                 write_index(spec))
    if any(f.name == "input_tokens" for f in handler.output_fields):
        # Summed from the merged file, so rows committed by an earlier attempt count too.
        result.input_tokens, result.output_tokens = output_files.column_sums(
            spec.output_path, ["input_tokens", "output_tokens"])
    result.status = STATUS_SUCCEEDED
    checkpoint.remove()


def _fill_counts(result: ShardResult, progress, handler) -> None:
    result.rows_out = progress.rows_out
    result.rows_quarantined = progress.rows_quarantined
    result.rows_in = progress.rows_done
    result.histogram = PredictionHistogram(edges=tuple(handler.drift_edges),
                                           counts=tuple(progress.histogram_counts))
