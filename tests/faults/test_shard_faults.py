"""Workers killed, preempted and out of disk mid-shard, through the real DAG and the real worker CLI.

One scenario, two runner processes (Airflow's start-up is paid twice, not once per fault):
1. publish ds=2026-11-21 (v1) and ds=2026-11-22 (model_version=v0): the earlier partitions;
2. run ds=2026-11-22 (v1), four shards of 1000 rows (40 row groups, fourteen steps and chunks each at
   the scenario's batch size), where shard 0 runs clean, shard 1's worker gets `kill -9` between writing its
   second chunk and recording it, shard 2's worker gets SIGTERM (pod
   preemption, exits 75) and is rerun inside the same try, resuming after its committed chunk, and
   shard 3's worker hits ENOSPC writing its second chunk;
3. a second process runs the date again, as clearing the failed tasks does: shards 0 and 2 are
   `already_committed` and not rewritten, shards 1 and 3 resume after their committed chunk.
The runs also carry a connection password and a credential in their environment, and the last test
greps everything the runs wrote for them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from dag_runner import REPO, run_dates, task_log
from nightshard_dev import demo

from faults.conftest import ID_COLUMN, RISK_DAG, risk_input, risk_output, risk_staging
from faults.invariant import (
    assert_published_exactly_once,
    assert_untouched,
    input_ids,
    snapshot,
)

pytestmark = pytest.mark.slow

DS, EARLIER_DS = "2026-11-22", "2026-11-21"
SHARDS = {1: "sigkill", 2: "sigterm", 3: "enospc"}
FAULTY_WORKER = str(Path(__file__).with_name("faulty_worker.py"))
CONNECTION_PASSWORD = "pw-9f3ac1d7e2-conn"
CREDENTIAL_SECRET = "sk-live-4be07c19a8d2-credential"
# The worker moves in steps of at least 4 batches and commits whole steps: at 16 rows a batch, a shard
# of forty 25-row row groups goes in fourteen steps of 3 row groups (the last 1). Twice what the
# pipeline's queues can hold, so after the fault at the second commit steps are still unread, as in a
# big shard, and the retry has work left to resume.
SCENARIO_BATCH_SIZE = 16
ROW_GROUP_ROWS = 25
ORPHAN_CHUNK = "output-000003-000006.arrow"


def small_batch_pipelines(root: Path) -> Path:
    """The repo's pipelines, the risk scorer at SCENARIO_BATCH_SIZE rows per batch, committing every step.

    The faults strike at a shard's second commit; with the default interval (10 s) these small
    shards would commit once, at the end.
    """
    pipelines = root / "pipelines"
    shutil.copytree(REPO / "dags" / "pipelines", pipelines)
    risk = pipelines / "tabular_risk.yaml"
    text = risk.read_text()
    assert "  batch_size: 8192\n" in text, "the risk pipeline's batch size moved: update this scenario"
    risk.write_text(text.replace("  batch_size: 8192\n",
                                 f"  batch_size: {SCENARIO_BATCH_SIZE}\n  commit_interval_seconds: 0\n"))
    return pipelines


@pytest.fixture(scope="module")
def scenario(module_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = module_home
    for ds in (EARLIER_DS, DS):
        demo.make_risk_partition(home / "data", ds, rows=4000, files=2, row_group_rows=ROW_GROUP_ROWS)
    credentials = tmp_path_factory.mktemp("secrets") / "service-account.json"
    credentials.write_text(json.dumps({"type": "service_account", "private_key": CREDENTIAL_SECRET}))
    secrets = {
        "AIRFLOW_CONN_NIGHTSHARD_WAREHOUSE": f"postgresql://etl:{CONNECTION_PASSWORD}@warehouse.internal:5432/dw",
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "NIGHTSHARD_API_TOKEN": CREDENTIAL_SECRET,
    }
    faults = json.dumps({f"{DS}/v1/{index}": fault for index, fault in SHARDS.items()})
    markers = tmp_path_factory.mktemp("fault-markers")  # the SIGTERM strikes once, as one preemption does
    pipelines = small_batch_pipelines(tmp_path_factory.mktemp("pipelines"))
    first, first_output = run_dates(RISK_DAG, [
        # model_version named in every run: dag.test() in one process carries a run's params into the next
        {"ds": EARLIER_DS, "conf": {"shard_rows": 1000, "model_version": "v1"}},
        {"ds": DS, "conf": {"shard_rows": 1000, "model_version": "v0"}, "label": "v0"},
        {"ds": DS, "conf": {"shard_rows": 1000, "model_version": "v1"}},
    ], worker_wrapper=FAULTY_WORKER, NIGHTSHARD_FAULTS=faults, NIGHTSHARD_FAULT_MARKERS=str(markers),
        NIGHTSHARD_PIPELINES_DIR=str(pipelines), **secrets)
    staging = risk_staging(home, DS)
    after_faults = {
        "results": {p.name: json.loads(p.read_text()) for p in (staging / "_results").glob("*.json")},
        "progress": {p.parent.name: json.loads(p.read_text()) for p in staging.glob("_checkpoints/*/progress.json")},
        "plan_files": {p.name: snapshot(p.parent)[p.name] for p in staging.glob("*.parquet")},
        "published": Path(risk_output(home, DS)).exists(),
        "staged_text": "\n".join(p.read_text(errors="replace") for p in staging.rglob("*.json")),
    }
    earlier = {"v1": snapshot(risk_output(home, EARLIER_DS)), "v0": snapshot(risk_output(home, DS, "v0"))}
    second, second_output = run_dates(RISK_DAG, [{"ds": DS, "conf": {"shard_rows": 1000}}],
                                      NIGHTSHARD_PIPELINES_DIR=str(pipelines), **secrets)
    return {"home": home, "first": first, "second": second, "after_faults": after_faults, "earlier": earlier,
            "outputs": first_output + second_output}


def infer_results(airflow_db: Path, run_id: str) -> dict[int, dict]:
    """The ShardResult each infer task returned (its XCom), by shard index."""
    database = sqlite3.connect(Path(airflow_db) / "airflow.db")
    rows = database.execute("select map_index, value from xcom where dag_id = ? and run_id = ? and task_id = 'infer' "
                            "and key = 'return_value'", (RISK_DAG, run_id)).fetchall()
    results = {}
    for map_index, value in rows:
        document = json.loads(value)
        results[map_index] = json.loads(document) if isinstance(document, str) else document
    return results


def test_faulty_run_fails_the_two_broken_shards_resumes_the_preempted_one_and_publishes_nothing(scenario):
    run = scenario["first"][DS]
    assert run["states"]["infer"].count("failed") == 2 and run["states"]["infer"].count("success") == 2, run["states"]
    assert run["states"]["publish"] == ["upstream_failed"], run["states"]
    assert not scenario["after_faults"]["published"]
    log = task_log(run["log"], "infer")
    results = scenario["after_faults"]["results"].values()
    [term_result] = [r for r in results if r["shard_id"].startswith("00002-")]
    # SIGTERM: committed, exited 75, rerun inside the same try (retries are 0 here) from its checkpoint.
    assert term_result["status"] == "succeeded" and term_result["attempts"] == 2, term_result
    assert term_result["resumed_from_rows"] > 0, term_result
    # Searched in all the runner printed (stdout and stderr): once in a full-suite CI run a line was
    # missing from the infer section of stdout, which a local rerun never reproduced.
    sigterm_lines = "\n".join(line for line in scenario["outputs"].splitlines()
                              if "map_index=2" in line or "00002-" in line or "preempt" in line)
    assert "worker preempted; the retry resumes from the last checkpoint (preemption 1 of at most 3" in \
        scenario["outputs"], sigterm_lines[-6000:]
    assert "exit -9" in log or "SIGKILL" in log  # kill -9
    assert "No space left on device" in log  # ENOSPC
    [kill_result] = [r for r in results if r["shard_id"].startswith("00003-")]
    assert kill_result["status"] == "failed" and "No space left on device" in kill_result["error"]


def test_kill_9_mid_commit_then_rerun_resumes_after_the_last_committed_chunk(scenario):
    home = scenario["home"]
    progress = scenario["after_faults"]["progress"]
    killed = [record for shard, record in progress.items() if shard.startswith("00001-")]
    # the first chunk's three row groups are recorded, the second chunk never was
    assert killed and killed[0]["units_committed"] == 3, progress
    assert scenario["second"][DS]["states"]["publish"] == ["success"], scenario["second"][DS]["states"]
    assert_published_exactly_once("kill -9 mid-commit, rerun", risk_output(home, DS),
                                  input_ids(risk_input(home, DS), ID_COLUMN), ID_COLUMN)
    log = task_log(scenario["second"][DS]["log"], "infer")
    assert f"deleting {ORPHAN_CHUNK}" in log, log  # the orphan chunk the kill left behind


def test_partition_after_kill_preemption_and_disk_full_is_byte_identical_to_an_uninterrupted_run(scenario):
    """model_version=v0 is a copy of v1's weights, scored without faults: same rows, so the same bytes."""
    home = scenario["home"]
    faulted, clean = (json.loads((risk_output(home, DS, version) / "_manifest.json").read_text())
                      for version in ("v1", "v0"))

    def by_shard(manifest, kind):
        return [(entry["path"].split("part-")[1][:5], entry["rows"], entry["bytes"], entry["sha256"])
                for entry in sorted(manifest[kind], key=lambda entry: entry["path"])]

    for kind in ("files", "quarantine_files"):
        assert by_shard(faulted, kind) == by_shard(clean, kind), kind


@pytest.mark.parametrize("index,fault", sorted(SHARDS.items()))
def test_every_faulted_shard_resumes_from_its_committed_rows(scenario, airflow_db, index, fault):
    results = infer_results(airflow_db, scenario["second"][DS]["run_id"])
    result = results[index]
    assert result["shard_id"].startswith(f"{index:05d}-") and result["status"] == "succeeded", result
    assert result["resumed_from_rows"] > 0 and result["attempts"] == 2, result
    assert result["rows_in"] == 1000


def test_retry_reruns_only_the_failed_shards_and_leaves_committed_ones_alone(scenario):
    second = scenario["second"][DS]
    plan_log = task_log(second["log"], "plan")
    assert plan_log.count("committed earlier, skipped") == 2, plan_log  # shard 0, and 2 (resumed in its try)
    assert plan_log.count("to score") == 2, plan_log
    infer_log = task_log(second["log"], "infer")
    assert infer_log.count("was committed by an earlier attempt") == 2
    before = scenario["after_faults"]["plan_files"]
    [(name, fingerprint)] = [(n, f) for n, f in before.items() if n.startswith("part-00000-")]
    published = risk_output(scenario["home"], DS) / name
    after = snapshot(published.parent)[name]
    assert after == fingerprint, "shard 0's output was rewritten by the retry"


def test_earlier_partitions_of_other_dates_and_versions_are_untouched(scenario):
    home = scenario["home"]
    assert_untouched(risk_output(home, EARLIER_DS), scenario["earlier"]["v1"])
    assert_untouched(risk_output(home, DS, "v0"), scenario["earlier"]["v0"])
    assert_published_exactly_once("earlier date, after faults and retry", risk_output(home, EARLIER_DS),
                                  input_ids(risk_input(home, EARLIER_DS), ID_COLUMN), ID_COLUMN)
    assert_published_exactly_once("other model version, after faults and retry", risk_output(home, DS, "v0"),
                                  input_ids(risk_input(home, DS), ID_COLUMN), ID_COLUMN)


def test_no_secret_reaches_task_logs_xcom_manifests_specs_or_results(scenario, airflow_db):
    home = scenario["home"]
    written = [scenario["outputs"], scenario["after_faults"]["staged_text"]]
    written += [p.read_text(errors="replace") for p in home.rglob("*")
                if p.is_file() and p.suffix in {".json", ".html", ".txt", ".log", ""}]
    database = sqlite3.connect(Path(airflow_db) / "airflow.db")
    xcom = [str(row) for row in database.execute("select value from xcom where dag_id = ?", (RISK_DAG,))]
    assert xcom, "no XCom rows to check"
    written += xcom
    for secret in (CONNECTION_PASSWORD, CREDENTIAL_SECRET):
        leaks = [text[max(0, text.find(secret) - 200): text.find(secret) + 50] for text in written if secret in text]
        assert not leaks, f"secret found: {leaks[:2]}"
