"""`wait`: the deferrable sensor and its trigger, on local paths and on gs:// (GCS emulator)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from nightshard.upstream.partition_sensor import PartitionReadySensor
from nightshard.upstream.partition_trigger import PartitionMarkerTrigger


def first_event(trigger: PartitionMarkerTrigger) -> dict:
    async def collect():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(collect())


def test_trigger_serialization_round_trips():
    trigger = PartitionMarkerTrigger(marker_uri="gs://b/t/ds=2026-11-22/_SUCCESS", poke_interval=5.0, deadline=123.0)
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_trigger_fires_when_a_late_marker_appears(tmp_path):
    marker = tmp_path / "ds=2026-11-22" / "_SUCCESS"

    def upstream_finishes_late():
        time.sleep(0.5)
        marker.parent.mkdir(parents=True)
        marker.write_text("")

    threading.Thread(target=upstream_finishes_late).start()
    event = first_event(PartitionMarkerTrigger(marker_uri=str(marker), poke_interval=0.1, deadline=time.time() + 30))
    assert event == {"status": "ready", "marker_uri": str(marker)}


def test_trigger_times_out_when_the_marker_never_comes(tmp_path):
    marker = str(tmp_path / "ds=2026-11-22" / "_SUCCESS")
    event = first_event(PartitionMarkerTrigger(marker_uri=marker, poke_interval=0.05, deadline=time.time() + 0.3))
    assert event["status"] == "timeout"


def test_timeout_fails_with_marker_wait_and_next_step():
    sensor = PartitionReadySensor(task_id="wait", input_root="/data/in", wait_timeout_seconds=7200)
    with pytest.raises(AirflowSensorTimeout) as raised:
        sensor.execute_complete({}, {"status": "timeout", "marker_uri": "/data/in/ds=2026-11-22/_SUCCESS"})
    message = str(raised.value)
    assert "/data/in/ds=2026-11-22/_SUCCESS did not appear within 2:00:00" in message
    assert "Next step" in message
    assert raised.value.next_step.startswith("check the upstream job that writes this partition")


def test_sensor_returns_at_once_when_the_partition_is_ready(tmp_path):
    (tmp_path / "ds=2026-11-22").mkdir()
    (tmp_path / "ds=2026-11-22" / "_SUCCESS").write_text("")
    sensor = PartitionReadySensor(task_id="wait", input_root=str(tmp_path))
    context = {"params": {"ds": "2026-11-22"}, "logical_date": None}
    assert sensor.execute(context).endswith("ds=2026-11-22/_SUCCESS")


def test_sensor_refuses_a_path_traversal_ds(tmp_path):
    from nightshard.config.run_parameters import RunParameterError

    sensor = PartitionReadySensor(task_id="wait", input_root=str(tmp_path))
    with pytest.raises(RunParameterError):
        sensor.execute({"params": {"ds": "../../etc"}, "logical_date": None})
