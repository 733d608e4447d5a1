"""Messages we send, pure: the completion message and the on-call alert, each with a versioned schema.

The schemas live in `schemas/` and are the documentation consumers code against; tests validate every
message we build against them.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

from nightshard.handoffs import CostReport, PlanPointer, PublishedPartition

COMPLETION_SCHEMA = "nightshard.completion.v1"
ALERT_SCHEMA = "nightshard.alert.v1"
SCHEMA_FOLDER = Path(__file__).with_name("schemas")

# Next steps by task, for failures whose exception does not carry its own.
NEXT_STEP_BY_TASK = {
    "wait": "check the upstream job that writes the partition; clear `wait` once its _SUCCESS exists",
    "plan": "read the plan error (it names the file and column); fix the input or the config, then clear `plan`",
    "infer": "open this shard's log; the retry resumes from its checkpoint. Reproduce with nightshard-worker run --spec",
    "validate": "the failed checks name the shard; fix it, clear that shard's infer task and validate",
    "cost": "check cost.accelerator / cost.provisioning against the price table",
    "publish": "clear `publish`: staging is kept until the swap, so a rerun is safe",
    "notify": "the run is published; clear `notify` to resend the message",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    version = name.split(".", 1)[1]  # "completion.v1"
    return json.loads((SCHEMA_FOLDER / f"{version}.json").read_text())


def completion_message(plan: PlanPointer, published: PublishedPartition, cost: CostReport) -> dict[str, Any]:
    return {
        "schema": COMPLETION_SCHEMA,
        "status": "published",
        "pipeline": plan["pipeline"],
        "ds": plan["ds"],
        "model_version": plan["model_version"],
        "run_id": plan["run_id"],
        "output_uri": published["output_partition"],
        "manifest_uri": published["manifest_uri"],
        "rows": published["rows"]["output"],
        "quarantined": published["rows"]["quarantined"],
        "cost": {
            "total": round(cost["total_cost"], 6),
            "currency": cost["currency"],
            "per_million_rows": round(cost["cost_per_million_rows"], 6),
            "accelerator_hours": round(cost["accelerator_hours"], 6),
            **({"input_tokens": cost["input_tokens"], "output_tokens": cost["output_tokens"],
                "per_million_input_tokens": round(cost["cost_per_million_input_tokens"], 6),
                "per_million_output_tokens": round(cost["cost_per_million_output_tokens"], 6)}
               if "input_tokens" in cost else {}),
        },
        "published_at": _now(),
    }


def alert_message(
    *,
    pipeline: str,
    dag_id: str,
    ds: str | None,
    run_id: str,
    task: str,
    shard: str | None,
    try_number: int,
    cause: str,
    next_step: str | None = None,
    log_url: str | None,
) -> dict[str, Any]:
    """The alert for a failed task; without a next step of its own, the task's usual one."""
    return {
        "schema": ALERT_SCHEMA,
        "status": "failed",
        "pipeline": pipeline,
        "dag_id": dag_id,
        "ds": ds,
        "run_id": run_id,
        "task": task,
        "shard": shard,
        "try_number": try_number,
        "cause": cause,
        "log_url": log_url,
        "next_step": next_step or default_next_step(task),
        "failed_at": _now(),
    }


def outbox_file_name(message: dict[str, Any]) -> str:
    kind = message["schema"].split(".")[1]
    safe_run = "".join(c if c.isalnum() or c in "-_" else "_" for c in message["run_id"])
    stamp = str(message.get("published_at") or message.get("failed_at"))
    stamp = stamp.replace(":", "").replace("-", "").replace("+", "")
    task = f"-{message['task']}" if "task" in message else ""
    shard = f"-{message['shard']}" if message.get("shard") else ""
    attempt = f"-try{message['try_number']}" if "try_number" in message else ""
    return f"{stamp}-{kind}-{message['pipeline']}-{safe_run}{task}{shard}{attempt}.json"


def default_next_step(task: str) -> str:
    """The usual next step for a failure of `task`, when its error names none."""
    return NEXT_STEP_BY_TASK.get(task, "open the task log named in log_url")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
