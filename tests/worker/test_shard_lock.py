"""Two workers on one shard (a retry started while an orphaned attempt still runs): the second waits for
the first, then finds the shard done or resumes after the first's last commit. Rows exactly once."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from conftest import output_ids, read_result, save_spec, start_worker
from test_resume_and_preemption import ROWS, slow_spec, wait_for_committed_units

from nightshard_worker.contract import EXIT_OK, STATUS_SUCCEEDED
from nightshard_worker.errors import PreemptedError, ShardBusyError
from nightshard_worker.shard_lock import exclusive_shard, lock_path


def wait_for_line(process, text: str, timeout: float = 60) -> list[str]:
    """Lines the process printed up to and including the first one containing `text`."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return seen
        assert time.monotonic() < deadline, f"no '{text}' within {timeout}s:\n{''.join(seen)}"
    raise AssertionError(f"process ended without printing '{text}':\n{''.join(seen)}")


@pytest.fixture
def two_workers():
    started = []

    def start(spec_path):
        process = start_worker(spec_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def second_worker_waiting_on_the_first(tmp_path, tabular_artifact, start):
    """(spec, first, second): the first worker mid-shard, the second waiting on its lock."""
    spec = slow_spec(tmp_path, tabular_artifact)
    spec_path = save_spec(spec, tmp_path)
    first = start(spec_path)
    wait_for_committed_units(spec, first, 2)
    second = start(spec_path)
    waiting = wait_for_line(second, "being scored by another worker")
    assert f"pid {first.pid}" in waiting[-1]
    return spec, first, second


def test_second_worker_waits_for_the_first_and_finds_the_shard_done(tmp_path, tabular_artifact, two_workers):
    spec, first, second = second_worker_waiting_on_the_first(tmp_path, tabular_artifact, two_workers)
    first_output, _ = first.communicate(timeout=120)
    rest, _ = second.communicate(timeout=120)

    assert first.returncode == EXIT_OK, first_output
    assert second.returncode == EXIT_OK, rest
    assert "already succeeded with this spec" in rest
    assert sorted(output_ids(spec)) == list(range(ROWS))
    assert read_result(spec).attempts == 1  # the second worker scored nothing


def test_second_worker_resumes_when_the_first_is_killed(tmp_path, tabular_artifact, two_workers):
    spec, first, second = second_worker_waiting_on_the_first(tmp_path, tabular_artifact, two_workers)

    first.send_signal(signal.SIGKILL)  # the kernel drops its lock with it
    first.wait()
    rest, _ = second.communicate(timeout=120)

    assert second.returncode == EXIT_OK, rest
    assert "the other worker is gone" in rest and "resuming after" in rest
    result = read_result(spec)
    assert result.status == STATUS_SUCCEEDED and result.attempts == 2 and result.resumed_from_rows > 0
    assert sorted(output_ids(spec)) == list(range(ROWS))


def test_lock_wait_gives_up_with_the_holder_named(tmp_path):
    checkpoint = str(tmp_path / "_checkpoints" / "0003")
    never = threading.Event()
    with exclusive_shard("0003", checkpoint, never):
        holder = open(lock_path(checkpoint)).read()
        waiter = threading.Thread(target=_expect_busy, args=(checkpoint,))
        waiter.start()
        waiter.join(timeout=30)
    assert '"pid"' in holder and not waiter.is_alive()
    assert _outcome["busy"].startswith("shard 0003 is still being scored by another worker (pid ")
    assert "then retry this task" in _outcome["busy"]


_outcome: dict[str, str] = {}


def _expect_busy(checkpoint: str) -> None:
    # flock locks belong to the open file description: a second open in this process contends like another process.
    with pytest.raises(ShardBusyError) as raised:
        with exclusive_shard("0003", checkpoint, threading.Event(), wait_seconds=0.3, poll_seconds=0.05):
            pass
    _outcome["busy"] = str(raised.value)


def test_sigterm_while_waiting_exits_as_preempted(tmp_path):
    checkpoint = str(tmp_path / "_checkpoints" / "0001")
    stop = threading.Event()
    stop.set()
    with exclusive_shard("0001", checkpoint, threading.Event()):
        with pytest.raises(PreemptedError):
            with exclusive_shard("0001", checkpoint, stop, poll_seconds=0.05):
                pass


def test_object_store_checkpoints_take_no_lock(tmp_path):
    with exclusive_shard("0001", "memory://bucket/_checkpoints/0001", threading.Event()):
        with exclusive_shard("0001", "memory://bucket/_checkpoints/0001", threading.Event(), wait_seconds=0):
            pass
    assert not list(tmp_path.iterdir())
