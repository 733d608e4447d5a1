"""Delivering messages: always to the local outbox, and to Pub/Sub when a topic is configured."""

from __future__ import annotations

import json
import logging
from typing import Any

from nightshard import storage
from nightshard.notifications.messages import outbox_file_name

log = logging.getLogger(__name__)


def deliver(message: dict[str, Any], *, outbox: str, topic: str | None, gcp_conn_id: str) -> dict[str, Any]:
    """Write the message to the outbox; publish it to `projects/<p>/topics/<t>` when given."""
    path = storage.join(outbox, outbox_file_name(message))
    storage.write_json_atomic(path, message)
    receipt: dict[str, Any] = {"outbox_file": path, "pubsub_topic": None}
    if topic:
        publish_to_pubsub(message, topic=topic, gcp_conn_id=gcp_conn_id)
        receipt["pubsub_topic"] = topic
    log.info("message %s delivered: %s", message["schema"], receipt)
    return receipt


def publish_to_pubsub(message: dict[str, Any], *, topic: str, gcp_conn_id: str) -> None:
    """Publishes and waits for the server's acknowledgement (the hook raises when it fails)."""
    from airflow.providers.google.cloud.hooks.pubsub import PubSubHook

    project_id, topic_id = parse_topic(topic)
    attributes = {"schema": message["schema"], "pipeline": message["pipeline"], "ds": message.get("ds") or ""}
    PubSubHook(gcp_conn_id=gcp_conn_id).publish(
        project_id=project_id,
        topic=topic_id,
        messages=[{"data": json.dumps(message, sort_keys=True).encode(), "attributes": attributes}],
    )


def parse_topic(topic: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics" or not parts[1] or not parts[3]:
        raise ValueError(f"Pub/Sub topic {topic!r} must look like projects/<project>/topics/<topic>")
    return parts[1], parts[3]


def slack_text(alert: dict[str, Any]) -> str:
    """The alert as one Slack message: what broke, where, and what to do."""
    shard = f", shard `{alert['shard']}`" if alert.get("shard") else ""
    log_link = f"\n<{alert['log_url']}|task log>" if alert.get("log_url") else ""
    return (
        f":red_circle: *{alert['pipeline']}* ds={alert.get('ds')}: task `{alert['task']}`{shard} failed "
        f"(try {alert['try_number']}).\n*Cause:* {alert['cause'][:1500]}\n*Next step:* {alert['next_step']}"
        f"{log_link}"
    )


def post_to_slack(alert: dict[str, Any], *, conn_id: str) -> None:
    """POST to the incoming webhook named by an Airflow connection (host, or extra webhook_url)."""
    import requests
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    url = (connection.extra_dejson or {}).get("webhook_url") or connection.host
    if not url or "://" not in url:
        raise ValueError(f"connection {conn_id} holds no webhook URL: put it in host or extra webhook_url")
    response = requests.post(url, json={"text": slack_text(alert)}, timeout=10)
    response.raise_for_status()
