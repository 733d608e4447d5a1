"""The failure callback of every pipeline task: an alert with shard, cause and next step for on-call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from nightshard.config.run_parameters import requested_ds
from nightshard.failures import cause_and_next_step
from nightshard.notifications.delivery import deliver, post_to_slack
from nightshard.notifications.messages import alert_message

log = logging.getLogger(__name__)


class OnCallNotifier(BaseNotifier):
    """Sends `nightshard.alert.v1` to the on-call topic, or to the local outbox."""

    template_fields = ()

    def __init__(
        self, *, pipeline: str, outbox: str, topic: str | None, gcp_conn_id: str, slack_conn_id: str | None = None
    ):
        super().__init__()
        self.pipeline = pipeline
        self.outbox = outbox
        self.topic = topic
        self.gcp_conn_id = gcp_conn_id
        self.slack_conn_id = slack_conn_id

    def notify(self, context: Any) -> None:
        ti = context["ti"]
        ticket = _ticket_of(context)
        ds = requested_ds(dict(context.get("params") or {}), context.get("logical_date"))
        cause, next_step = cause_and_next_step(context.get("exception"))
        message = alert_message(
            pipeline=self.pipeline,
            dag_id=ti.dag_id,
            ds=ds,
            run_id=ti.run_id,
            task=ti.task_id,
            shard=ticket.get("shard_id") if ticket else None,
            try_number=int(ti.try_number or 0),
            cause=cause,
            next_step=next_step,
            log_url=log_location(ti),
        )
        try:
            deliver(message, outbox=self.outbox, topic=self.topic, gcp_conn_id=self.gcp_conn_id)
        except Exception:  # an alert that cannot be sent must not hide the task's own failure
            log.exception("could not deliver the on-call alert %s", message)
        if self.slack_conn_id:
            try:
                post_to_slack(message, conn_id=self.slack_conn_id)
            except Exception:
                log.exception("could not post the on-call alert to Slack (%s)", self.slack_conn_id)


def log_location(ti: Any) -> str | None:
    """Where on-call reads this try's log: the file `airflow dags test` leaves (no UI runs then), else
    the UI page of the try (api.base_url)."""
    from nightshard.task_log_files import current_log_file

    path = current_log_file()
    if path:
        return Path(path).as_uri()
    return getattr(ti, "log_url", None)


def _ticket_of(context: Any) -> dict[str, Any] | None:
    task = context.get("task")
    ticket = getattr(task, "ticket", None)
    return ticket if isinstance(ticket, dict) else None
