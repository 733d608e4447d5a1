"""The trigger behind the `wait` task: polls for a partition's marker without holding a worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from nightshard import storage


class PartitionMarkerTrigger(BaseTrigger):
    """Fires `ready` once the marker exists, or `timeout` at `deadline` (epoch seconds)."""

    def __init__(self, *, marker_uri: str, poke_interval: float, deadline: float):
        super().__init__()
        self.marker_uri = marker_uri
        self.poke_interval = poke_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"marker_uri": self.marker_uri, "poke_interval": self.poke_interval, "deadline": self.deadline},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            # fsspec calls block: run them off the triggerer's event loop
            if await asyncio.to_thread(storage.exists, self.marker_uri):
                yield TriggerEvent({"status": "ready", "marker_uri": self.marker_uri})
                return
            remaining = self.deadline - time.time()
            if remaining <= 0:
                yield TriggerEvent({"status": "timeout", "marker_uri": self.marker_uri})
                return
            await asyncio.sleep(min(self.poke_interval, remaining))
