"""`notify`: tell downstream teams that fresh predictions landed."""

from __future__ import annotations

from typing import Any

import jsonschema

from nightshard import layout
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.handoffs import CostReport, PlanPointer, PublishedPartition
from nightshard.notifications.delivery import deliver
from nightshard.notifications.messages import COMPLETION_SCHEMA, completion_message, load_schema


def notify_run(
    config: PipelineConfig, plan: PlanPointer, published: PublishedPartition, cost: CostReport
) -> dict[str, Any]:
    message = completion_message(plan, published, cost)
    jsonschema.validate(message, load_schema(COMPLETION_SCHEMA))  # never send what consumers cannot read
    return deliver(
        message,
        outbox=layout.outbox_folder(config),
        topic=config.notify.pubsub_topic,
        gcp_conn_id=config.notify.gcp_conn_id,
    )
