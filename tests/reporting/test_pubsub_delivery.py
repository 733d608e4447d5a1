"""Completion messages and on-call alerts through the Google provider's PubSubHook, to the Pub/Sub emulator.

The hook gets its connection from AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT with `is_anonymous: true` (the
Google provider's anonymous-credentials switch) and a project; with PUBSUB_EMULATOR_HOST set, the
Pub/Sub client talks plain gRPC to the emulator. No key file, no application-default credentials.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from nightshard.notifications.delivery import deliver
from nightshard.notifications.messages import (
    ALERT_SCHEMA,
    COMPLETION_SCHEMA,
    alert_message,
    completion_message,
    load_schema,
)
from reporting.samples import cost_for, plan_for, straggling_run

PROJECT = "nightshard-test"
PULL_TIMEOUT_SECONDS = 30

pytestmark = pytest.mark.slow


@pytest.fixture
def emulated_pubsub(pubsub_emulator, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": PROJECT}}))
    return pubsub_emulator


def topic_with_subscription(name: str) -> tuple[str, str]:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, name)
    subscription = subscriber.subscription_path(PROJECT, f"{name}-reader")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    return topic, subscription


def pull_all(subscription: str, expected: int) -> list:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    received = []
    for _ in range(10):  # the emulator may hand out fewer messages than are waiting per pull
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=PULL_TIMEOUT_SECONDS)
        received.extend(response.received_messages)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[message.ack_id for message in response.received_messages])
        if len(received) >= expected:
            break
    return [message.message for message in received]


def sample_completion() -> dict:
    results = straggling_run()
    published = {"output_partition": "/p/ds=2026-11-22", "manifest_uri": "/p/ds=2026-11-22/_manifest.json",
                 "rows": {"output": 9475, "quarantined": 25}}
    return completion_message(plan_for(results), published, cost_for(results))


def sample_alert() -> dict:
    return alert_message(
        pipeline="tabular_risk", dag_id="nightshard_tabular_risk", ds="2026-11-22",
        run_id="scheduled__2026-11-22T00:00:00+00:00", task="infer", shard="00003-abcd0003", try_number=3,
        cause="shard 00003-abcd0003 failed: too many bad rows (exit 3). Next step: read the quarantine file",
        log_url=None,
    )


@pytest.mark.parametrize(
    ("topic_name", "build", "schema"),
    [
        pytest.param("completions", sample_completion, COMPLETION_SCHEMA, id="completion"),
        pytest.param("oncall", sample_alert, ALERT_SCHEMA, id="alert"),
    ],
)
def test_message_reaches_a_subscriber_through_pubsubhook_and_matches_its_schema(
        emulated_pubsub, tmp_path, topic_name, build, schema):
    topic, subscription = topic_with_subscription(topic_name)
    message = build()
    receipt = deliver(message, outbox=str(tmp_path / "outbox"), topic=topic, gcp_conn_id="google_cloud_default")
    assert (tmp_path / "outbox").joinpath(receipt["outbox_file"].rsplit("/", 1)[1]).exists()

    [received] = pull_all(subscription, expected=1)
    document = json.loads(received.data)
    jsonschema.validate(document, load_schema(schema))
    assert document == message
    assert dict(received.attributes) == {"schema": schema, "pipeline": "tabular_risk", "ds": "2026-11-22"}
