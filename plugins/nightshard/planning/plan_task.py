"""`plan`: turn a ready partition into shard specs, and skip shards already scored for this date."""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import time

from nightshard import layout, storage
from nightshard.backends.worker_exit import read_shard_result
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.config.run_parameters import RunParameters
from nightshard.handoffs import PlanDocument, ShardTicket
from nightshard.planning.sharding import (
    PlanError,
    check_schema,
    cut_shards,
    id_index_buckets,
    read_footers,
    shard_id,
    size_shards,
    startup_share_line,
)
from nightshard.reporting.run_estimate import log_estimate
from nightshard_worker import id_index
from nightshard_worker.contract import (
    ContractError,
    ModelSpec,
    RuntimeSpec,
    ShardResult,
    ShardSpec,
    shard_file_stem,
)
from nightshard_worker.input_requirements import RequirementError, required_columns

log = logging.getLogger(__name__)

def model_spec_for(config: PipelineConfig, model_version: str) -> ModelSpec:
    return ModelSpec(
        handler=config.model.handler,
        version=model_version,
        artifact=layout.model_artifact(config, model_version),
        options=dict(config.model.options),
    )


def max_map_length() -> int:
    """The deployment's `[core] max_map_length`: Airflow refuses to expand a mapped task past it."""
    from airflow.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


def plan_run(config: PipelineConfig, run: RunParameters, *, run_id: str,
             max_mapped_tasks: int | None = None) -> PlanDocument:
    """Plan the run; returns the plan document (stored in staging by the plan task, see plan_document)."""
    partition = layout.input_partition(config, run.ds)
    model = model_spec_for(config, run.model_version)
    if model.artifact and not storage.exists(model.artifact):
        raise PlanError(
            f"model artifact {model.artifact} for model_version={run.model_version} does not exist. "
            "Publish the model there or pick an existing version in the model_version param"
        )
    try:
        needed = required_columns(model)
    except RequirementError as error:
        raise PlanError(f"{config.source}: {error}") from None
    placement = _llm_placement(config, model, config.runtime)
    clock = time.perf_counter()
    footers = read_footers(partition)
    footer_seconds = time.perf_counter() - clock
    if not footers:
        raise PlanError(
            f"{partition} holds no Parquet files although its marker exists. Ask the upstream job to "
            "republish the partition, or skip this date"
        )
    id_column = config.input.id_column
    check_schema(footers, needed, id_column)
    input_rows = sum(footer.rows for footer in footers)
    sizing = size_shards(input_rows, run.shard_rows,
                         max_map_length() if max_mapped_tasks is None else max_mapped_tasks)
    log.info("%s", sizing.describe())
    planned = cut_shards(footers, sizing.shard_rows, max_shards=sizing.max_mapped_tasks)
    if not planned:
        raise PlanError(f"{partition}: every file has zero rows; nothing to score. Ask the upstream job why")
    # Uniqueness is checked where the data is: each worker indexes its ids by hash bucket, validate
    # reads one bucket across all shards at a time (nightshard.validation.id_check). 0 buckets: not checked.
    buckets = id_index_buckets(input_rows) if config.input.check_unique_ids else 0

    staging = layout.staging_partition(config, run.model_version, run.ds)
    if run.reprocess == "all" and not run.dry_run:
        log.info("reprocess=all: clearing earlier work in %s", staging)
        storage.remove(staging, recursive=True)

    if not run.dry_run:
        # The latest plan of a date owns its staging area; publish refuses for any other run, so two
        # runs of one date can never interleave their files in the published partition.
        storage.write_json_atomic(storage.join(staging, layout.STAGING_OWNER_FILE), {"run_id": run_id})
    runtime = config.runtime
    specs = [
        _shard_spec(config, run, shard, run_id=run_id, partition=partition, staging=staging, model=model,
                    runtime=runtime, shard_count=len(planned), id_index_buckets=buckets)
        for shard in planned
    ]

    # one listing instead of a lookup per shard (three requests each on GCS for a missing object)
    results_present = {posixpath.basename(uri) for uri, _ in storage.list_file_sizes(storage.join(staging, "_results"))}

    def stage(spec: ShardSpec) -> ShardTicket:
        spec_uri = storage.join(staging, "_specs", f"{shard_file_stem(spec.shard_id)}.json")
        committed = posixpath.basename(spec.result_path) in results_present and _already_committed(spec)
        if not run.dry_run:
            storage.write_text_atomic(spec_uri, spec.to_json())
        return {
            "shard_id": spec.shard_id,
            "shard_index": spec.shard_index,
            "shard_count": spec.shard_count,
            "rows": spec.input_rows,
            "model_version": run.model_version,
            "spec_uri": spec_uri,
            "result_uri": spec.result_path,
            "already_committed": committed,
        }

    # one object per shard, each a round trip on an object store: checked and written concurrently
    clock = time.perf_counter()
    tickets = list(storage.map_bounded(stage, specs))
    spec_seconds = time.perf_counter() - clock
    del specs
    log.info("plan read %d footers in %.1f s and checked and wrote %d specs in %.1f s (%d in flight)",
             len(footers), footer_seconds, len(tickets), spec_seconds, storage.DEFAULT_CONCURRENCY)

    log.info("%s", shard_table(tickets, partition=partition, input_rows=input_rows, files=len(footers)))
    estimate = log_estimate(config, run.model_version, run.ds,
                            [t["rows"] for t in tickets if not t["already_committed"]])
    log.info("%s", startup_share_line(config.sharding.startup_seconds, sizing.shard_rows,
                                      estimate["rows_per_second_per_worker"] if estimate else None))
    return {
        "pipeline": config.name,
        "ds": run.ds,
        "model_version": run.model_version,
        "run_id": run_id,
        "dry_run": run.dry_run,
        "input_partition": partition,
        "input_files": [{"path": f.path, "rows": f.rows, "bytes": f.size_bytes} for f in footers],
        "input_rows": input_rows,
        "input_columns": footers[0].columns,
        "staging": staging,
        "planned_shards": tickets,
        "sharding": sizing.as_dict(),
        "plan_seconds": {"footers": round(footer_seconds, 3), "specs": round(spec_seconds, 3)},
        "id_index_buckets": buckets,
        "estimate": estimate,
        "placement": placement,
        "planned_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),  # run duration starts here
        # infer maps over this list; a dry run maps over nothing and everything after it skips
        "shards": [] if run.dry_run else tickets,
    }


# A task log of thousands of shard lines is read by nobody; the rest are in the plan document.
SHARD_TABLE_LINES = 50


def _llm_placement(config: PipelineConfig, model: ModelSpec, runtime: RuntimeSpec) -> str | None:
    """How an llm model will sit on the pod's GPUs, logged; a PlanError with numbers if it fits nowhere."""
    if model.handler != "llm":
        return None
    from nightshard_worker import model_files
    from nightshard_worker.llm_options import parse_llm_options
    from nightshard_worker.placement import PlacementError, placement_for_plan

    try:
        source = model.artifact or model_files.smollm2_gguf()
    except FileNotFoundError as missing:  # an Airflow image without the worker's weights package
        log.info("llm placement not planned: %s; the worker decides on the GPUs it finds", missing)
        return f"not planned: {missing}"
    try:
        placement = placement_for_plan(source, precision=runtime.precision,
                                       kv_tokens=parse_llm_options(model.options).kv_tokens,
                                       backend=config.document["backend"])  # the worker reads the mapping: it has no Airflow-side types
    except PlacementError as error:
        raise PlanError(f"{config.source}: model {source}: {error}") from None
    log.info("llm placement: %s", placement)
    return placement


def shard_table(tickets: list[ShardTicket], *, partition: str, input_rows: int, files: int) -> str:
    """The plan as on-call reads it in the task log: the first SHARD_TABLE_LINES shards, then a count."""
    committed = sum(1 for ticket in tickets if ticket["already_committed"])
    lines = [
        f"plan for {partition}: {files} files, {input_rows} rows, {len(tickets)} shards "
        f"({committed} committed earlier)",
        f"{'shard':<16} {'rows':>12}  status",
    ]
    for ticket in tickets[:SHARD_TABLE_LINES]:
        status = "committed earlier, skipped" if ticket["already_committed"] else "to score"
        lines.append(f"{ticket['shard_id']:<16} {ticket['rows']:>12}  {status}")
    if len(tickets) > SHARD_TABLE_LINES:
        lines.append(f"... {len(tickets) - SHARD_TABLE_LINES} more shards, listed in the plan document")
    return "\n".join(lines)


def _shard_spec(config: PipelineConfig, run: RunParameters, shard, *, run_id: str, partition: str, staging: str,
                model: ModelSpec, runtime: RuntimeSpec, shard_count: int, id_index_buckets: int) -> ShardSpec:
    identifier = shard_id(
        shard, pipeline=config.name, ds=run.ds, model_version=run.model_version, partition_uri=partition
    )
    stem = shard_file_stem(identifier)
    return ShardSpec(
        pipeline=config.name,
        ds=run.ds,
        run_id=run_id,
        shard_id=identifier,
        shard_index=shard.index,
        shard_count=shard_count,
        inputs=shard.slices,
        input_rows=shard.rows,
        id_column=config.input.id_column,
        model=model,
        runtime=runtime,
        output_path=storage.join(staging, f"{stem}.parquet"),
        quarantine_path=storage.join(staging, layout.QUARANTINE_DIR, f"{stem}.parquet"),
        result_path=storage.join(staging, "_results", f"{stem}.json"),
        checkpoint_dir=storage.join(staging, "_checkpoints", identifier),
        id_index_dir=storage.join(staging, layout.ID_INDEX_DIR) if id_index_buckets else "",
        id_index_buckets=id_index_buckets,
    )


def _already_committed(spec: ShardSpec) -> bool:
    """A shard counts as done only with a succeeded result for the same inputs and its output file."""
    if not storage.exists(spec.result_path):
        return False
    try:
        result = ShardResult.from_dict(dict(read_shard_result(spec.result_path)))
    except (ContractError, ValueError, TypeError):  # unreadable, or of another contract: score it again
        return False
    return (
        result.completes(spec)
        and storage.exists(spec.output_path)
        # a shard scored before the uniqueness check was on has no id index: score it again
        and (not spec.id_index_buckets or storage.exists(id_index.index_uri(spec.id_index_dir, spec.shard_id)))
    )
