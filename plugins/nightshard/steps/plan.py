"""`plan`: turn a ready partition into shard specs, and skip shards already scored for this date."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from nightshard_worker.contract import (
    STATUS_SUCCEEDED,
    ContractError,
    ModelSpec,
    RuntimeSpec,
    ShardResult,
    ShardSpec,
    shard_file_stem,
)
from nightshard_worker.input_requirements import RequirementError, required_columns

from nightshard import layout, storage
from nightshard.config import PipelineConfig
from nightshard.planning import PlanError, check_schema, check_unique_ids, cut_shards, read_footers, shard_id
from nightshard.run_estimate import log_estimate
from nightshard.run_parameters import RunParameters

log = logging.getLogger(__name__)

RUNTIME_FIELDS = {field for field in RuntimeSpec.__dataclass_fields__}


def model_spec_for(config: PipelineConfig, model_version: str) -> ModelSpec:
    model = config.section("model")
    return ModelSpec(
        handler=model["handler"],
        version=model_version,
        artifact=layout.model_artifact(config, model_version),
        options=dict(model.get("options") or {}),
    )


def runtime_spec_for(config: PipelineConfig) -> RuntimeSpec:
    runtime = {key: value for key, value in config.section("runtime").items() if key in RUNTIME_FIELDS}
    runtime["max_bad_row_fraction"] = config.section("validation")["max_bad_row_fraction_per_shard"]
    return RuntimeSpec(**runtime)


def plan_run(config: PipelineConfig, run: RunParameters, *, run_id: str) -> dict[str, Any]:
    """Plan the run; returns the plan document that later tasks read from XCom."""
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
    placement = _llm_placement(config, model, runtime_spec_for(config))
    footers = read_footers(partition)
    if not footers:
        raise PlanError(
            f"{partition} holds no Parquet files although its marker exists. Ask the upstream job to "
            "republish the partition, or skip this date"
        )
    id_column = config.section("input")["id_column"]
    check_schema(footers, needed, id_column)
    if config.section("input")["check_unique_ids"]:
        check_unique_ids(footers, id_column)
    planned = cut_shards(footers, run.shard_rows)
    if not planned:
        raise PlanError(f"{partition}: every file has zero rows; nothing to score. Ask the upstream job why")

    staging = layout.staging_partition(config, run.model_version, run.ds)
    if run.reprocess == "all" and not run.dry_run:
        log.info("reprocess=all: clearing earlier work in %s", staging)
        storage.remove(staging, recursive=True)

    if not run.dry_run:
        # The latest plan of a date owns its staging area; publish refuses for any other run, so two
        # runs of one date can never interleave their files in the published partition.
        storage.write_json_atomic(storage.join(staging, layout.STAGING_OWNER_FILE), {"run_id": run_id})
    runtime = runtime_spec_for(config)
    tickets = []
    for shard in planned:
        identifier = shard_id(
            shard, pipeline=config.name, ds=run.ds, model_version=run.model_version, partition_uri=partition
        )
        stem = shard_file_stem(identifier)
        spec = ShardSpec(
            pipeline=config.name,
            ds=run.ds,
            run_id=run_id,
            shard_id=identifier,
            shard_index=shard.index,
            shard_count=len(planned),
            inputs=shard.slices,
            input_rows=shard.rows,
            id_column=config.section("input")["id_column"],
            model=model,
            runtime=runtime,
            output_path=storage.join(staging, f"{stem}.parquet"),
            quarantine_path=storage.join(staging, layout.QUARANTINE_DIR, f"{stem}.parquet"),
            result_path=storage.join(staging, "_results", f"{stem}.json"),
            checkpoint_dir=storage.join(staging, "_checkpoints", identifier),
        )
        spec_uri = storage.join(staging, "_specs", f"{stem}.json")
        committed = _already_committed(spec)
        if not run.dry_run:
            storage.write_text_atomic(spec_uri, spec.to_json())
        tickets.append(
            {
                "shard_id": identifier,
                "shard_index": shard.index,
                "shard_count": len(planned),
                "rows": shard.rows,
                "model_version": run.model_version,
                "spec_uri": spec_uri,
                "result_uri": spec.result_path,
                "already_committed": committed,
            }
        )

    input_rows = sum(footer.rows for footer in footers)
    log.info("%s", shard_table(tickets, partition=partition, input_rows=input_rows, files=len(footers)))
    estimate = log_estimate(config, run.model_version, run.ds,
                            [t["rows"] for t in tickets if not t["already_committed"]])
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
        "estimate": estimate,
        "placement": placement,
        "planned_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # run duration starts here
        # infer maps over this list; a dry run maps over nothing and everything after it skips
        "shards": [] if run.dry_run else tickets,
    }


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
                                       backend=config.section("backend"))
    except PlacementError as error:
        raise PlanError(f"{config.source}: model {source}: {error}") from None
    log.info("llm placement: %s", placement)
    return placement


def shard_table(tickets: list[dict[str, Any]], *, partition: str, input_rows: int, files: int) -> str:
    """The plan as on-call reads it in the task log."""
    lines = [
        f"plan for {partition}: {files} files, {input_rows} rows, {len(tickets)} shards",
        f"{'shard':<16} {'rows':>12}  status",
    ]
    for ticket in tickets:
        status = "committed earlier, skipped" if ticket["already_committed"] else "to score"
        lines.append(f"{ticket['shard_id']:<16} {ticket['rows']:>12}  {status}")
    return "\n".join(lines)


def _already_committed(spec: ShardSpec) -> bool:
    """A shard counts as done only with a succeeded result for the same inputs and its output file."""
    if not storage.exists(spec.result_path):
        return False
    try:
        result = ShardResult.from_json(storage.read_text(spec.result_path))
    except ContractError:
        return False
    return (
        result.status == STATUS_SUCCEEDED
        and result.spec_fingerprint == spec.fingerprint()
        and storage.exists(spec.output_path)
    )
