"""The JSON schema of a pipeline config file (`dags/pipelines/<name>.yaml`).

Every property carries a description: docs/config.md is generated from this schema
(`python -m nightshard_dev.config_reference`), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nightshard_worker.contract import RuntimeSpec

IDENTIFIER = r"^[a-z][a-z0-9_]{1,62}$"
MODEL_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


# The worker's RuntimeSpec is the one home of runtime defaults; the config schema shows and fills them.
_RUNTIME_DEFAULTS = {spec_field.name: spec_field.default for spec_field in dataclasses.fields(RuntimeSpec)}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required or [],
        **extra,
    }


def build_pipeline_schema(gke_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole schema; the GKE section comes from the backend that owns it."""
    return _object(
        required=["name", "input", "model", "output"],
        properties={
            "name": {
                "type": "string",
                "pattern": IDENTIFIER,
                "description": "Pipeline name; the DAG id is nightshard_<name>. Lower case, digits, _.",
            },
            "description": {"type": "string", "description": "One line shown at the top of the DAG docs."},
            "owner": {"type": "string", "default": "ml-platform", "description": "Airflow owner of every task."},
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Extra DAG tags; nightshard and the handler name are always added.",
            },
            "schedule": {
                "type": ["string", "null"],
                "default": "0 0 * * *",
                "description": (
                    "Cron (UTC) of the data intervals, or null for manual runs only. The default gives one "
                    "interval per calendar day: the run for ds=D starts at D+1 00:00 and waits for the partition."
                ),
            },
            "start_date": {
                "type": "string",
                "pattern": DATE,
                "default": "2026-11-01",
                "description": "First partition date the schedule covers (YYYY-MM-DD).",
            },
            "catchup": {"type": "boolean", "default": False, "description": "Run missed dates on unpause."},
            "retries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10,
                "default": 2,
                "description": "Retries per task; a retried shard resumes from its last checkpoint.",
            },
            "max_preemptions": {
                "type": "integer",
                "minimum": 0,
                "maximum": 20,
                "default": 3,
                "description": (
                    "Preemptions of a shard (exit 75, or its pod deleted by Kueue) retried inside the same try, "
                    "without using up retries; each resumes from the last checkpoint."
                ),
            },
            "retry_delay_seconds": {
                "type": "integer",
                "minimum": 0,
                "default": 60,
                "description": "Wait between retries.",
            },
            "max_active_runs": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1,
                "default": 1,
                "description": (
                    "Concurrent runs of this DAG. Fixed at 1: two runs of one date must never write the "
                    "same staging area at once; backfills run date after date."
                ),
            },
            "input": _object(
                required=["uri", "id_column"],
                properties={
                    "uri": {
                        "type": "string",
                        "description": (
                            "Root of the feature table; the partition for a date is <uri>/ds=<date>/. "
                            "Local path or gs:// URI; ${VAR} and ${VAR:-default} expand from the environment."
                        ),
                    },
                    "id_column": {
                        "type": "string",
                        "description": "Column that identifies a row; carried through to every output row.",
                    },
                    "check_unique_ids": {
                        "type": "boolean",
                        "default": True,
                        "description": (
                            "Refuse to publish a partition with null or duplicated ids: each worker indexes "
                            "its shard's ids by hash bucket, validate checks one bucket at a time."
                        ),
                    },
                    "marker": {
                        "type": "string",
                        "default": "_SUCCESS",
                        "description": "File the upstream job writes last; the wait task waits for it.",
                    },
                    "wait_timeout_seconds": {
                        "type": "integer",
                        "minimum": 1,
                        "default": 21600,
                        "description": "How long wait defers before failing with a clear message.",
                    },
                    "poke_interval_seconds": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": 60,
                        "description": "How often the deferred trigger checks for the marker.",
                    },
                },
            ),
            "model": _object(
                required=["handler", "version"],
                properties={
                    "handler": {
                        "type": "string",
                        "description": (
                            "tabular, text_embedding, image_classification, llm (docs/llm.md), or package.module:Class for "
                            "your own handler (see worker/README.md)."
                        ),
                    },
                    "version": {
                        "type": "string",
                        "pattern": MODEL_VERSION,
                        "description": "Default model version; the model_version param overrides it per run.",
                    },
                    "artifact": {
                        "type": ["string", "null"],
                        "default": None,
                        "description": (
                            "Model file or directory; {model_version} is replaced by the run's version. "
                            "null lets the handler use the weights its package ships."
                        ),
                    },
                    "options": {
                        "type": "object",
                        "default": {},
                        "description": "Handler options, e.g. feature_columns, text_column, image_column.",
                    },
                },
            ),
            "runtime": _object(
                properties={
                    "device": {"type": "string", "default": _RUNTIME_DEFAULTS["device"], "description": "auto, cpu or cuda."},
                    "precision": {
                        "enum": ["fp32", "bf16", "fp16"],
                        "default": _RUNTIME_DEFAULTS["precision"],
                        "description": "Autocast precision of the forward pass.",
                    },
                    "batch_size": {
                        "type": "integer",
                        "minimum": 1,
                        "default": _RUNTIME_DEFAULTS["batch_size"],
                        "description": "Rows per forward pass at most.",
                    },
                    "max_batch_tokens": {
                        "type": "integer",
                        "minimum": 16,
                        "default": _RUNTIME_DEFAULTS["max_batch_tokens"],
                        "description": "Text only: padded tokens per forward pass at most.",
                    },
                    "compile": {"type": "boolean", "default": _RUNTIME_DEFAULTS["compile"], "description": "torch.compile the model."},
                    "preprocess_workers": {
                        "type": "integer",
                        "minimum": 1,
                        "default": _RUNTIME_DEFAULTS["preprocess_workers"],
                        "description": "Threads that tokenise / decode while the model runs.",
                    },
                    "threads": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "default": _RUNTIME_DEFAULTS["threads"],
                        "description": "torch intra-op threads; null keeps torch's default.",
                    },
                    "commit_every_row_groups": {
                        "type": "integer",
                        "minimum": 1,
                        "default": _RUNTIME_DEFAULTS["commit_every_row_groups"],
                        "description": "Checkpoint cadence in row groups: a commit covers at least this many (rounded up "
                                       "to whole steps of a few batches) and at least commit_interval_seconds of scoring.",
                    },
                    "commit_interval_seconds": {
                        "type": "number",
                        "minimum": 0,
                        "default": _RUNTIME_DEFAULTS["commit_interval_seconds"],
                        "description": "Checkpoint cadence in time: at least this many seconds of scoring between "
                                       "commits, so a retry after a hard kill redoes at most about this much work "
                                       "(SIGTERM still commits everything scored). 0 commits every step: a commit is three object puts "
                                       "on GKE, so for a cheap model that can cost more than scoring (measured in "
                                       "bench/README.md, `bench.commit_cadence`). Uncommitted rows wait in memory and are "
                                       "committed early at 64 MiB.",
                    },
                    "progress_interval_seconds": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": _RUNTIME_DEFAULTS["progress_interval_seconds"],
                        "description": "Seconds between progress lines in the task log.",
                    },
                    "metrics_port": {
                        "type": ["integer", "null"],
                        "minimum": 0,
                        "maximum": 65535,
                        "default": _RUNTIME_DEFAULTS["metrics_port"],
                        "description": "Port the worker serves Prometheus metrics on while it runs (0: any free port); "
                                       "null serves none. On GKE, the chart's worker.networkPolicy.metricsPort "
                                       "lets the scraper in.",
                    },
                    "pushgateway_url": {
                        "type": ["string", "null"],
                        "default": _RUNTIME_DEFAULTS["pushgateway_url"],
                        "description": "Prometheus Pushgateway for worker metrics; null disables the push.",
                    },
                },
            ),
            "sharding": _object(
                properties={
                    "target_rows": {
                        "type": "integer",
                        "minimum": 1,
                        "default": 100000,
                        "description": (
                            "Rows per shard to aim for; shards are cut on row-group boundaries, so a shard "
                            "holds whole row groups. Shards grow past it when the partition would need more "
                            "mapped tasks than Airflow's [core] max_map_length (the plan log says so)."
                        ),
                    },
                    "startup_seconds": {
                        "type": "number",
                        "minimum": 0,
                        "default": 60,
                        "description": (
                            "Seconds a shard spends before scoring (pod start, image pull, model load); plan "
                            "logs the share of GPU time it costs at the chosen shard size."
                        ),
                    },
                },
            ),
            "output": _object(
                required=["uri"],
                properties={
                    "uri": {
                        "type": "string",
                        "description": (
                            "Output root; predictions land in <uri>/<pipeline>/model_version=<v>/ds=<date>/."
                        ),
                    },
                },
            ),
            "validation": _object(
                properties={
                    "max_quarantine_fraction": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": 0.05,
                        "description": "The run is not published when more of its rows than this are quarantined.",
                    },
                    "max_bad_row_fraction_per_shard": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": _RUNTIME_DEFAULTS["max_bad_row_fraction"],
                        "description": "A worker fails its shard when more of its rows than this are bad.",
                    },
                    "drift_psi_warn": {
                        "type": "number",
                        "minimum": 0,
                        "default": 0.1,
                        "description": "PSI against the previous run above which validate logs a warning.",
                    },
                    "drift_psi_fail": {
                        "type": ["number", "null"],
                        "minimum": 0,
                        "default": None,
                        "description": "PSI above which the run is not published; null never fails on drift.",
                    },
                },
            ),
            "backend": _object(
                properties={
                    "kind": {
                        "enum": ["local", "gke"],
                        "default": "local",
                        "description": "local runs the worker as a subprocess; gke runs one GPU pod per shard.",
                    },
                    "infer_pool": {
                        "type": "string",
                        "default": "default_pool",
                        "description": (
                            "Airflow pool the infer tasks run in: its slots cap shards in flight across every "
                            "run and DAG that share it (see docs/scale.md)."
                        ),
                    },
                    "max_active_shards": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "default": None,
                        "description": (
                            "max_active_tis_per_dagrun of infer: shards in flight per run; null leaves it to "
                            "the pool and [core] parallelism."
                        ),
                    },
                    "gke": gke_schema,
                },
            ),
            "cost": _object(
                properties={
                    "accelerator": {
                        "type": "string",
                        "default": "cpu",
                        "description": (
                            "Price-table key of the device the workers run on (see plugins/nightshard/reporting/prices.json). "
                            "On GKE with GPUs it defaults to backend.gke.accelerator; a different value is an error."
                        ),
                    },
                    "provisioning": {
                        "enum": ["on-demand", "spot", "flex-start", "queued"],
                        "default": "on-demand",
                        "description": "How the capacity is bought; queued is DWS queued provisioning.",
                    },
                    "prices_file": {
                        "type": ["string", "null"],
                        "default": None,
                        "description": "A JSON price table of your own that overrides the shipped one.",
                    },
                },
            ),
            "notify": _object(
                properties={
                    "outbox": {
                        "type": "string",
                        "default": "${NIGHTSHARD_HOME}/outbox",
                        "description": "Folder that receives completion and alert messages as JSON files.",
                    },
                    "pubsub_topic": {
                        "type": ["string", "null"],
                        "default": None,
                        "description": "projects/<p>/topics/<t> for completion messages; null keeps them local.",
                    },
                    "oncall_topic": {
                        "type": ["string", "null"],
                        "default": None,
                        "description": "projects/<p>/topics/<t> for failure alerts; null keeps them local.",
                    },
                    "oncall_slack_conn_id": {
                        "type": ["string", "null"],
                        "default": None,
                        "description": (
                            "Airflow connection whose host (or extra webhook_url) is a Slack incoming-webhook "
                            "URL; failure alerts are posted there too. null: no Slack."
                        ),
                    },
                    "gcp_conn_id": {
                        "type": "string",
                        "default": "google_cloud_default",
                        "description": "Airflow connection used to publish to Pub/Sub.",
                    },
                },
            ),
        },
    )
