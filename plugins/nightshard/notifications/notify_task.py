"""`notify`: tell downstream teams that fresh predictions landed."""

from __future__ import annotations

from typing import Any

import jsonschema

from nightshard import layout
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.notifications.delivery import deliver
from nightshard.notifications.messages import COMPLETION_SCHEMA, completion_message, load_schema


def notify_run(
    config: PipelineConfig, plan: dict[str, Any], published: dict[str, Any], cost: dict[str, Any]
) -> dict[str, Any]:
    message = completion_message(plan, published, cost)
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA))  # never send what consumers cannot read
    settings = config.section("notify")
    return deliver(
        message,
        outbox=layout.outbox_folder(config),
        topic=settings.get("pubsub_topic"),
        gcp_conn_id=settings["gcp_conn_id"],
    )
