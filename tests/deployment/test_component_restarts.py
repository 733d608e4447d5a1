"""Airflow components dying under a running pipeline (the fault suite's restart case, on the real stack):

- the scheduler is killed (SIGKILL) while a shard is half scored, either with everything it started
  (its container dies) or alone (the task's worker lives on as an orphan); a new scheduler resets the
  orphaned task and retries it: the retry resumes from the shard's checkpoint, or waits on the shard's
  lock for the orphan to finish and finds the shard done;
- the triggerer is killed while `wait` is deferred on a partition that is not there yet; a new triggerer
  takes the trigger over, and the run goes on once the partition lands.

Both end in a published partition with every input id exactly once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from faults.invariant import assert_published_exactly_once, input_ids
from hang_guard import hang_guard

from deployment.real_stack import RESTART_DATES, SLOW_DAG_ID, AirflowStack, require_worker, wait_for_dag

pytestmark = pytest.mark.slow

ID_COLUMN = "customer_id"
# Dead scheduler noticed (30 s + 5 s) + retry delay (5 s) + the shard (~90 s) + validate..notify, on two
# loaded cores.
RECOVERY_TIMEOUT_SECONDS = hang_guard(420)


def input_partition(stack: AirflowStack, ds: str) -> Path:
    return stack.home / "data" / "features" / "risk" / f"ds={ds}"


def output_partition(stack: AirflowStack, ds: str) -> Path:
    return stack.home / "predictions" / "slow_risk" / "model_version=v1" / f"ds={ds}"


def committed_units(stack: AirflowStack, ds: str) -> int:
    staging = stack.home / "predictions" / "slow_risk" / "model_version=v1" / "_staging" / f"ds={ds}"
    units = 0
    for record in staging.rglob("progress.json"):
        try:
            units += json.loads(record.read_text())["units_committed"]
        except (OSError, ValueError, KeyError):
            pass  # replaced while read
    return units


def wait_for(condition, what: str, stack: AirflowStack, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s\n{stack.component_logs()}")
        time.sleep(0.5)


def task_state(stack: AirflowStack, run_id: str, task_id: str) -> str | None:
    states = [ti["state"] for ti in stack.task_instances(SLOW_DAG_ID, run_id) if ti["task_id"] == task_id]
    return states[0] if states else None


def infer_logs(stack: AirflowStack, run_id: str) -> dict[str, str]:
    """attempt file name -> text, for every attempt of the shard's infer task."""
    folder = stack.airflow_home / "logs" / f"dag_id={SLOW_DAG_ID}" / f"run_id={run_id}" / "task_id=infer"
    return {str(path.relative_to(folder)): path.read_text(errors="replace") for path in sorted(folder.rglob("*.log"))}


@pytest.mark.parametrize("ds,kill_tasks_too,recovery", [
    # The scheduler's container dies: its tasks and their workers with it. The retry resumes after the
    # dead worker's committed chunks.
    (RESTART_DATES[0], True, "resuming after"),
    # Only the scheduler process dies: the task's worker lives on, orphaned. The retry waits on the
    # shard's lock until the orphan has finished, then finds the shard done (or, on a machine slow to
    # retry, the orphan finished first: done all the same; the lock has its own tests in tests/worker).
    (RESTART_DATES[1], False, "already succeeded with this spec"),
], ids=["container-killed", "scheduler-process-killed"])
def test_scheduler_killed_mid_shard_the_retry_recovers_and_every_row_lands_once(
        airflow_stack: AirflowStack, ds: str, kill_tasks_too: bool, recovery: str):
    require_worker()
    stack = airflow_stack
    wait_for_dag(stack, SLOW_DAG_ID)
    run_id = stack.trigger(SLOW_DAG_ID, ds, f"restart_scheduler_{ds}")
    wait_for(lambda: committed_units(stack, ds) >= 1, "a committed chunk of the shard", stack)

    stack.kill_component("scheduler", with_descendants=kill_tasks_too)
    assert committed_units(stack, ds) < 6, "the shard finished before the scheduler died: nothing was tested"
    stack.start_component("scheduler")
    stack.wait_for_runs({run_id}, RECOVERY_TIMEOUT_SECONDS, dag_id=SLOW_DAG_ID)

    assert_published_exactly_once(f"scheduler killed mid-shard ({'with' if kill_tasks_too else 'without'} its tasks)",
                                  output_partition(stack, ds), input_ids(input_partition(stack, ds), ID_COLUMN),
                                  ID_COLUMN)
    infer = [ti for ti in stack.task_instances(SLOW_DAG_ID, run_id) if ti["task_id"] == "infer"]
    assert len(infer) == 1 and infer[0]["try_number"] >= 2, infer  # the orphaned attempt was reset and retried
    logs = infer_logs(stack, run_id)
    retry = logs[max(logs, key=lambda name: int(name.rsplit("attempt=", 1)[1].split(".")[0]))]
    assert recovery in retry, retry
    if not kill_tasks_too:
        print("retry waited for the orphaned worker:", "being scored by another worker" in retry)


def test_triggerer_killed_while_waiting_a_new_one_takes_the_sensor_over(airflow_stack: AirflowStack):
    stack, ds = airflow_stack, RESTART_DATES[2]
    marker = input_partition(stack, ds) / "_SUCCESS"
    marker.unlink()  # upstream has not finished yet
    wait_for_dag(stack, SLOW_DAG_ID)
    run_id = stack.trigger(SLOW_DAG_ID, ds, f"restart_triggerer_{ds}")
    wait_for(lambda: task_state(stack, run_id, "wait") == "deferred", "wait deferring", stack)

    stack.kill_component("triggerer")
    stack.start_component("triggerer")
    marker.write_text("")  # upstream lands while the new triggerer takes over
    stack.wait_for_runs({run_id}, RECOVERY_TIMEOUT_SECONDS, dag_id=SLOW_DAG_ID)

    assert_published_exactly_once("triggerer killed while waiting", output_partition(stack, ds),
                                  input_ids(input_partition(stack, ds), ID_COLUMN), ID_COLUMN)
    wait = [ti for ti in stack.task_instances(SLOW_DAG_ID, run_id) if ti["task_id"] == "wait"]
    assert wait[0]["try_number"] == 1, wait  # the deferral moved to the new triggerer: no failed attempt
