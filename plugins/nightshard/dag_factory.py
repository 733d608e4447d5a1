# mypy: disable-error-code="arg-type,attr-defined"
# (the wiring calls TaskFlow tasks with XComArgs where the functions declare what they receive at run time)
"""The DAG factory: one pipeline config file in, one DAG out.

    wait >> plan >> infer (one task per shard) >> validate >> cost >> publish >> notify

`cost` runs before `publish` so the manifest carries the run's cost; `publish` is the only task that
makes anything visible to readers. Building a DAG reads the config and nothing else: no data, no
network, no torch or pandas, so the dag-processor parses it in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, XComArg, task

from nightshard import layout
from nightshard.backends.local.operator import LocalWorkerOperator
from nightshard.config.pipeline_config import (
    PipelineConfig,
    PipelineConfigError,
    config_files,
    load_pipeline_config,
)
from nightshard.config.run_parameters import build_params, run_parameters_from_context
from nightshard.handoffs import (
    PLAN_POINTER_KEY,
    CostReport,
    PlanPointer,
    PublishedPartition,
    ShardResultDocument,
    ShardTicket,
    ValidationReport,
)
from nightshard.notifications.oncall_notifier import OnCallNotifier
from nightshard.upstream.partition_sensor import PartitionReadySensor


class BrokenPipelineConfigs(ValueError):
    """One import error that lists every config that could not become a DAG."""


# Not cached on purpose: the dag-processor re-parses in a long-lived process, and an edited config
# must show up on the next parse.


def load_all_configs() -> tuple[tuple[PipelineConfig, ...], tuple[PipelineConfigError, ...]]:
    configs, errors = [], []
    for path in config_files():
        try:
            configs.append(load_pipeline_config(path))
        except PipelineConfigError as error:
            errors.append(error)
    return tuple(configs), tuple(errors)


def pipeline_dags() -> dict[str, DAG]:
    """A DAG per valid config; broken configs are reported by `raise_for_broken_configs`."""
    configs, _ = load_all_configs()
    return {config.dag_id: build_pipeline_dag(config) for config in configs}


def raise_for_broken_configs() -> None:
    _, errors = load_all_configs()
    if errors:
        listing = "\n".join(f"- {error}" for error in errors)
        raise BrokenPipelineConfigs(
            f"{len(errors)} pipeline config(s) could not become DAGs (the other pipelines are unaffected):\n{listing}"
        )


def predictions_asset(config: PipelineConfig) -> Asset:
    """Downstream DAGs schedule on this; each event's extra names the ds, version and manifest."""
    return Asset(name=f"nightshard_{config.name}_predictions", uri=f"nightshard://{config.name}/predictions")


def build_pipeline_dag(config: PipelineConfig) -> DAG:
    document = config.document
    input_settings, notify_settings = config.input, config.notify
    schedule = document["schedule"]
    asset = predictions_asset(config)
    alert = OnCallNotifier(
        pipeline=config.name,
        outbox=layout.outbox_folder(config),
        topic=notify_settings.oncall_topic,
        gcp_conn_id=notify_settings.gcp_conn_id,
        slack_conn_id=notify_settings.oncall_slack_conn_id,
    )
    with DAG(
        dag_id=config.dag_id,
        description=config.description or f"nightly batch inference: {config.name}",
        doc_md=dag_documentation(config),
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC") if schedule else None,
        start_date=dt.datetime.fromisoformat(document["start_date"]).replace(tzinfo=dt.UTC),
        catchup=document["catchup"],
        max_active_runs=config.max_active_runs,
        tags=sorted({"nightshard", config.model.handler.split(":")[0], *config.tags}),
        params=build_params(config),
        default_args={
            "owner": config.owner,
            "retries": config.retries,
            "retry_delay": dt.timedelta(seconds=config.retry_delay_seconds),
            "on_failure_callback": alert,
        },
    ) as dag:
        wait = PartitionReadySensor(
            task_id="wait",
            input_root=layout.input_root(config),
            marker=input_settings.marker,
            wait_timeout_seconds=input_settings.wait_timeout_seconds,
            poke_interval_seconds=input_settings.poke_interval_seconds,
            retries=0,  # the timeout already is the patience; a retry would only double it
        )

        # Every hand-off crosses XCom once, whole: no per-key copies of a dict return value.
        @task(multiple_outputs=False)
        def plan(**context: Any) -> list[ShardTicket]:
            """Returns the shard tickets infer maps over; XCom key PLAN_POINTER_KEY points at the plan document."""
            from nightshard.planning.plan_document import write_plan
            from nightshard.planning.plan_task import plan_run

            run = run_parameters_from_context(config, context)
            document = plan_run(config, run, run_id=context["run_id"])
            context["ti"].xcom_push(key=PLAN_POINTER_KEY, value=write_plan(document))
            return document["shards"]

        @task(multiple_outputs=False)
        def validate(plan: PlanPointer, results: Sequence[ShardResultDocument]) -> ValidationReport:
            from nightshard.planning.plan_document import load_plan
            from nightshard.validation.validate_task import validate_run

            return validate_run(config, load_plan(plan), results[:])

        @task(multiple_outputs=False)
        def cost(plan: PlanPointer, results: Sequence[ShardResultDocument]) -> CostReport:
            from nightshard.planning.plan_document import load_plan
            from nightshard.reporting.cost_task import cost_run

            return cost_run(config, load_plan(plan), results[:])

        @task(outlets=[asset], multiple_outputs=False)
        def publish(
            plan: PlanPointer, results: Sequence[ShardResultDocument], validation: ValidationReport, cost: CostReport,
            **context: Any,
        ) -> PublishedPartition:
            from nightshard.planning.plan_document import load_plan
            from nightshard.publishing.publish_task import publish_run
            from nightshard.reporting.report_task import report_run

            document = load_plan(plan)  # read before publish removes the staging area it lives in
            published = publish_run(config, document, results[:], validation, cost)
            # run_report.html and the run metrics; neither can fail a run that is already published
            published.update(report_run(config, document, results[:], validation, cost, published))
            context["outlet_events"][asset].extra = {
                "ds": document["ds"],
                "model_version": document["model_version"],
                "output_uri": published["output_partition"],
                "manifest_uri": published["manifest_uri"],
            }
            return published

        @task(multiple_outputs=False)
        def notify(plan: PlanPointer, published: PublishedPartition, cost: CostReport) -> dict[str, Any]:
            from nightshard.notifications.notify_task import notify_run

            return notify_run(config, plan, published, cost)  # the pointer's header: the document is gone

        tickets = plan()
        plan_pointer = XComArg(tickets.operator, key=PLAN_POINTER_KEY)  # plan's second XCom, not an index
        infer = build_infer(config, tickets)
        checked = validate(plan_pointer, infer.output)
        priced = cost(plan_pointer, infer.output)  # after validate (wiring below): an invalid run is not priced
        published = publish(plan_pointer, infer.output, checked, priced)
        notified = notify(plan_pointer, published, priced)

        wait >> tickets >> infer >> checked >> priced >> published >> notified
    return dag


def build_infer(config: PipelineConfig, tickets: Any) -> Any:
    """One mapped task per shard, on the backend the config names, in the pool and limits it names."""
    backend = config.backend
    limits: dict[str, Any] = {
        "pool": backend.infer_pool,
        "max_active_tis_per_dagrun": backend.max_active_shards,
        "max_preemptions": config.max_preemptions,
    }
    if backend.kind == "gke":
        from nightshard.backends.gke.operator import map_shard_pods

        return map_shard_pods(
            tickets=tickets,
            gke=backend.gke,
            pipeline=config.name,
            model_version=config.model.version,
            **limits,
        )
    return LocalWorkerOperator.partial(task_id="infer", **limits).expand(ticket=tickets)


def dag_documentation(config: PipelineConfig) -> str:
    model = config.model
    return f"""\
### {config.name}
{config.description}

**Waits for** `{layout.input_root(config)}/ds=<date>/{config.input.marker}`
(deferred, up to {config.input.wait_timeout_seconds} s).

**Scores** every row with the `{model.handler}` handler, model version `{model.version}` by default
(`model_version` param), in shards of about {config.sharding.target_rows} rows on the
`{config.backend.kind}` backend.

**Writes** `{layout.output_root(config)}/{config.name}/model_version=<v>/ds=<date>/`:
`part-<shard>.parquet`, `_quarantine/`, `_manifest.json`, then `_SUCCESS` last. Reports under `_reports/`.

**On failure** an alert with the shard, the cause and the next step goes to
`{config.notify.oncall_topic or layout.outbox_folder(config)}`.

Config: `{config.source}`
"""
