"""kill -9 and SIGTERM mid-shard: the rerun resumes after the last committed chunk, rows exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from conftest import (
    FEATURES,
    make_spec,
    output_ids,
    progress_record,
    read_result,
    run_worker,
    save_spec,
    start_worker,
    tabular_table,
    write_parquet,
)
from hang_guard import hang_guard

from nightshard_worker import tuning
from nightshard_worker.contract import EXIT_OK, EXIT_PREEMPTED, STATUS_PREEMPTED, STATUS_SUCCEEDED, ModelSpec

ROWS, ROW_GROUP_ROWS = 1200, 100  # 12 row groups


def slow_spec(tmp_path, tabular_artifact, commit_every: int = 1):
    """A shard of 12 steps at >= 0.16 s each, committed step by step (interval 0): a kill lands mid-shard."""
    model = ModelSpec(handler="worker_test_handlers:SlowTabularHandler", version="1",
                      artifact=str(tabular_artifact),
                      options={"feature_columns": FEATURES, "delay_seconds": 0.08})
    input_slice = write_parquet(tmp_path / "in.parquet", tabular_table(ROWS), ROW_GROUP_ROWS)
    return make_spec(tmp_path, [input_slice], model, batch_size=50, commit_every_row_groups=commit_every,
                     commit_interval_seconds=0.0)


def wait_for_committed_units(spec, process, units: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + hang_guard(timeout)
    while time.monotonic() < deadline:
        record = progress_record(spec)
        if record and record["units_committed"] >= units:
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.02)
    raise AssertionError(f"worker did not commit {units} row groups in {timeout}s")


@pytest.mark.parametrize("kill_after_units,commit_every", [(1, 1), (5, 2)])
def test_rerun_after_kill_9_resumes_after_last_committed_chunk(tmp_path, tabular_artifact,
                                                              kill_after_units, commit_every):
    spec = slow_spec(tmp_path, tabular_artifact, commit_every)
    spec_path = save_spec(spec, tmp_path)
    first_started = time.monotonic()
    process = start_worker(spec_path)
    wait_for_committed_units(spec, process, kill_after_units)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first_attempt_seconds = time.monotonic() - first_started
    committed_rows = progress_record(spec)["rows_out"]
    ledgered = progress_record(spec)["attempt_seconds"]  # the killed attempt, as of its last commit

    completed = run_worker(spec_path)

    assert completed.returncode == EXIT_OK, completed.stdout
    assert sorted(output_ids(spec)) == list(range(ROWS))
    result = read_result(spec)
    assert result.status == STATUS_SUCCEEDED and result.attempts == 2
    assert result.resumed_from_rows >= committed_rows > 0
    assert result.rows_in == ROWS
    # The killed attempt is billed: cost covers both attempts' accelerator time.
    assert len(ledgered) == 1 and 0 < ledgered[0] < first_attempt_seconds
    assert result.earlier_attempts_seconds == pytest.approx(ledgered[0])
    from nightshard.reporting.cost import run_cost

    cost = run_cost([result.to_dict()], accelerator="cpu", provisioning="on-demand", accelerators_per_shard=1,
                    table={"prices": {"cpu": {"on-demand": 3600.0}}})
    assert cost["total_cost"] == pytest.approx(result.wall_seconds + ledgered[0])
    assert cost["shards"][0]["attempts"] == 2

    # An uninterrupted run committing all at once publishes the very same bytes.
    clean_folder = tmp_path / "uninterrupted"
    clean_folder.mkdir()
    clean = slow_spec(clean_folder, tabular_artifact, commit_every=ROWS // ROW_GROUP_ROWS)
    assert run_worker(save_spec(clean, clean_folder)).returncode == EXIT_OK
    for resumed_file, clean_file in ((spec.output_path, clean.output_path), (spec.quarantine_path, clean.quarantine_path)):
        assert Path(resumed_file).read_bytes() == Path(clean_file).read_bytes(), resumed_file
    assert read_result(clean).output_sha256 == result.output_sha256


def test_orphan_chunks_and_foreign_records_are_discarded(tmp_path, tabular_artifact):
    spec = slow_spec(tmp_path, tabular_artifact)
    checkpoint = tmp_path / "checkpoint" / spec.shard_id
    checkpoint.mkdir(parents=True)
    (checkpoint / "progress.json").write_text('{"fingerprint": "another-spec", "units_committed": 7, "chunks": []}')
    (checkpoint / "output-000007-000008.arrow").write_bytes(b"half a chunk")

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    assert "belongs to another spec" in completed.stdout
    assert sorted(output_ids(spec)) == list(range(ROWS))
    assert read_result(spec).resumed_from_rows == 0


def test_sigterm_commits_and_exits_75_then_rerun_completes_exactly_once(tmp_path, tabular_artifact):
    spec = slow_spec(tmp_path, tabular_artifact)
    spec_path = save_spec(spec, tmp_path)
    process = start_worker(spec_path)
    wait_for_committed_units(spec, process, 2)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    log = process.communicate(timeout=30)[0]
    stop_seconds = time.monotonic() - signalled

    assert process.returncode == EXIT_PREEMPTED, log
    # The promise GKE Spot holds us to (15 s on node shutdown); a generous bound, not a timing test.
    assert stop_seconds < tuning.PREEMPTION_EXIT_BUDGET_SECONDS < tuning.SPOT_SHUTDOWN_GRACE_SECONDS, (
        f"took {stop_seconds:.1f}s to stop"
    )
    preempted = read_result(spec)
    assert preempted.status == STATUS_PREEMPTED
    assert preempted.rows_in == progress_record(spec)["rows_out"] > 0

    completed = run_worker(spec_path)

    assert completed.returncode == EXIT_OK, completed.stdout
    assert sorted(output_ids(spec)) == list(range(ROWS))
    result = read_result(spec)
    assert result.attempts == 2 and result.resumed_from_rows == preempted.rows_in
