"""`wait`: a deferrable sensor for the upstream partition's `_SUCCESS` marker (local path or gs://)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from nightshard import storage
from nightshard.config.run_parameters import ds_from_context
from nightshard.failures import ExplainedError
from nightshard.upstream.partition_trigger import PartitionMarkerTrigger


class PartitionNotReady(ExplainedError, AirflowSensorTimeout):
    """The partition's marker did not appear within the wait timeout."""


class PartitionReadySensor(BaseSensorOperator):
    """Succeeds once `<input_root>/ds=<ds>/<marker>` exists; defers to the triggerer meanwhile.

    `ds` comes from the run's params or logical date (see run_parameters). The timeout fails the
    task with a message naming the marker, the wait and the next step; it does not retry.
    """

    template_fields = ("input_root", "marker")

    def __init__(
        self,
        *,
        input_root: str,
        marker: str = "_SUCCESS",
        wait_timeout_seconds: int = 6 * 3600,
        poke_interval_seconds: float = 60.0,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(poke_interval=poke_interval_seconds, timeout=wait_timeout_seconds, **kwargs)
        self.input_root = input_root
        self.marker = marker
        self.wait_timeout_seconds = wait_timeout_seconds
        self.poke_interval_seconds = poke_interval_seconds
        self.deferrable = deferrable

    def marker_uri(self, context: Any) -> str:
        ds = ds_from_context(context)
        return storage.join(self.input_root, f"ds={ds}", self.marker)

    def poke(self, context: Any) -> bool:
        return storage.exists(self.marker_uri(context))

    def execute(self, context: Any) -> str:
        marker_uri = self.marker_uri(context)
        if storage.exists(marker_uri):
            self.log.info("partition ready: %s", marker_uri)
            return marker_uri
        if not self.deferrable:
            return super().execute(context) or marker_uri
        self.log.info(
            "waiting for %s (checking every %ss, up to %s)",
            marker_uri,
            self.poke_interval_seconds,
            dt.timedelta(seconds=self.wait_timeout_seconds),
        )
        self.defer(
            trigger=PartitionMarkerTrigger(
                marker_uri=marker_uri,
                poke_interval=self.poke_interval_seconds,
                deadline=time.time() + self.wait_timeout_seconds,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        if event.get("status") == "ready":
            self.log.info("partition ready: %s", event["marker_uri"])
            return event["marker_uri"]
        raise PartitionNotReady(
            f"upstream partition not ready: {event['marker_uri']} did not appear within "
            f"{dt.timedelta(seconds=self.wait_timeout_seconds)}.",
            next_step="check the upstream job that writes this partition; once the marker exists, clear this "
            "task to wait again.",
        )
