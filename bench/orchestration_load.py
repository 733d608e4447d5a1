"""Orchestration load: one run of N mapped shards through the real scheduler on PostgreSQL.

The stack the deployment tests run (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
a PostgreSQL database of its own, tests/deployment/real_stack.py) scores one partition cut into
--shards shards of --shard-rows rows each with the demo tabular model (a tiny MLP: the model costs
nothing, so what is measured is orchestration). Printed, from the metadata database: plan-to-publish
seconds, infer tasks' queued -> running latency, task duration against the worker's own wall time
(the rest is Airflow's task start and the worker's process start), and the slot time per shard:
infer wall x parallelism / shards.

    PYTHONPATH=plugins:.:tests .venv/bin/python -m bench.orchestration_load [--shards 1000] [--parallelism 8]

With --committed every shard is scored before the run, outside Airflow (its output, result and id
index written as a worker would, by this script): infer then only reads each shard's result, so the
run measures Airflow's cost per mapped task (scheduling, task start, XCom) and validate / publish
over N shards, without N worker processes. Without --committed every shard runs a worker process,
and the report adds the CPU time of the stack's whole process tree per shard (1,000 shards take ~42
minutes on this 2-core machine).

With --timeout the run is measured as far as it got (shards finished, rate) and left unpublished.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT / "plugins"))

from deployment.real_stack import (  # noqa: E402
    AIRFLOW,
    COMPONENTS,
    AirflowStack,
    free_port,
    log_in,
    postgres_available,
    psql,
    stack_environment,
    stop_processes,
    wait_for_dag,
    wait_until_healthy,
)

DAG_ID = "nightshard_scale_trivial"
DS = "2026-11-20"
CONFIG = """\
name: scale_trivial
description: orchestration load benchmark (bench/orchestration_load.py)
owner: bench
tags: [bench]
schedule: null
start_date: "2026-11-01"
retries: 0
input:
  uri: "${{NIGHTSHARD_HOME}}/data/features/risk"
  id_column: customer_id
  check_unique_ids: true
  poke_interval_seconds: 5
model:
  handler: tabular
  version: v1
  artifact: "${{NIGHTSHARD_HOME}}/models/tabular_risk/{{model_version}}/model.pt"
  options:
    feature_columns: [tenure_months, balance, utilisation, payments_late_90d, income, age,
                      open_accounts, inquiries_30d, savings_ratio, txn_count_30d, txn_amount_30d, region_risk]
runtime:
  batch_size: 1024
  threads: 1
sharding:
  target_rows: {shard_rows}
output:
  uri: "${{NIGHTSHARD_HOME}}/predictions"
validation:
  max_quarantine_fraction: 0.5
backend:
  kind: local
  max_active_shards: {parallelism}
"""


def query(database_url: str, sql: str) -> list[list[str]]:
    done = subprocess.run(["psql", database_url, "-qAt", "-F", "\t", "-c", sql], capture_output=True, text=True,
                          check=True)
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def parse_time(text: str) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def measure(database_url: str, run_id: str, parallelism: int) -> dict:
    rows = query(database_url, f"select task_id, map_index, state, queued_dttm, start_date, end_date from "
                               f"task_instance where run_id = '{run_id}'")
    tasks = [{"task": r[0], "map_index": int(r[1]), "state": r[2], "queued": parse_time(r[3]),
              "start": parse_time(r[4]), "end": parse_time(r[5])} for r in rows]
    infer = [t for t in tasks if t["task"] == "infer" and t["map_index"] >= 0]
    finished = [t for t in infer if t["state"] == "success" and t["end"]]
    by_task = {t["task"]: t for t in tasks if t["map_index"] == -1}
    walls = {}
    for map_index, value in query(database_url, f"select map_index, value from xcom where run_id = '{run_id}' "
                                                f"and task_id = 'infer' and key = 'return_value'"):
        try:
            walls[int(map_index)] = float(json.loads(value)["wall_seconds"])
        except (ValueError, KeyError, TypeError):
            pass
    report: dict = {"shards": len(infer), "shards_finished": len(finished), "parallelism": parallelism}
    plan, publish = by_task.get("plan"), by_task.get("publish")
    if plan and plan["end"]:
        last = max((t["end"] for t in finished), default=plan["end"])
        infer_wall = (last - plan["end"]).total_seconds()
        report["infer_wall_seconds"] = round(infer_wall, 1)
        report["plan_seconds"] = round((plan["end"] - plan["start"]).total_seconds(), 1)
        if finished:
            report["slot_seconds_per_shard"] = round(infer_wall * parallelism / len(finished), 2)
            report["shards_per_minute"] = round(len(finished) / infer_wall * 60, 1)
        if publish and publish["state"] == "success":
            report["plan_to_publish_seconds"] = round((publish["end"] - plan["end"]).total_seconds(), 1)
            report["after_infer_seconds"] = round((publish["end"] - last).total_seconds(), 1)
    if finished:
        durations = [(t["end"] - t["start"]).total_seconds() for t in finished]
        latency = [(t["start"] - t["queued"]).total_seconds() for t in finished if t["queued"]]
        overhead = [(t["end"] - t["start"]).total_seconds() - walls[t["map_index"]]
                    for t in finished if t["map_index"] in walls]
        report["task_seconds_median"] = round(statistics.median(durations), 2)
        report["queued_to_running_seconds_median"] = round(statistics.median(latency), 2) if latency else None
        report["worker_wall_seconds_median"] = round(statistics.median(walls.values()), 2) if walls else None
        report["task_minus_worker_seconds_median"] = round(statistics.median(overhead), 2) if overhead else None
    return report


def stack_cpu_seconds(stack: AirflowStack) -> float:
    """Core-seconds used so far by the stack's processes and everything they started: each live
    process's own time plus its reaped children's (a task process's, and its worker's, once waited
    for), so every process is counted once."""
    import psutil

    total = 0.0
    for process in stack.processes.values():
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def score_outside_airflow(stack: AirflowStack, pipelines: Path) -> int:
    """Plan as the DAG will, then leave every shard committed: output, result and id index."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nightshard_worker.contract import STATUS_SUCCEEDED, ShardResult, ShardSpec
    from nightshard_worker.id_index import read_input_ids, write_index

    os.environ["NIGHTSHARD_HOME"] = str(stack.home)
    from nightshard import storage
    from nightshard.config.pipeline_config import load_pipeline_config
    from nightshard.config.run_parameters import RunParameters
    from nightshard.planning.plan_task import plan_run

    config = load_pipeline_config(pipelines / "scale_trivial.yaml")
    run = RunParameters(ds=DS, model_version="v1", shard_rows=config.sharding.target_rows,
                        reprocess="missing", dry_run=False)
    document = plan_run(config, run, run_id="scored-outside-airflow")

    def commit(ticket: dict) -> None:
        spec = ShardSpec.from_json(storage.read_text(ticket["spec_uri"]))
        ids = read_input_ids(spec).column("id")
        table = pa.table({spec.id_column: ids, "score": pa.array(np.full(len(ids), 0.5, np.float32))})
        Path(spec.output_path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, spec.output_path)
        write_index(spec)
        result = ShardResult(shard_id=spec.shard_id, status=STATUS_SUCCEEDED, spec_fingerprint=spec.fingerprint(),
                             rows_in=len(ids), rows_out=len(ids), output_path=spec.output_path,
                             output_bytes=storage.file_size(spec.output_path),
                             output_sha256=storage.sha256_of(spec.output_path), quarantine_path=spec.quarantine_path,
                             output_columns={spec.id_column: str(ids.type), "score": "float"}, device="cpu",
                             wall_seconds=0.01)
        storage.write_text_atomic(spec.result_path, result.to_json())

    list(storage.map_bounded(commit, document["shards"], concurrency=4))
    return len(document["shards"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--shard-rows", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism and backend.max_active_shards")
    parser.add_argument("--timeout", type=float, default=3000, help="measure the run as far as it got after this")
    parser.add_argument("--committed", action="store_true", help="score every shard before the run (see above)")
    parser.add_argument("--output", default=None)
    arguments = parser.parse_args(argv)
    reason = postgres_available()
    if reason:
        raise SystemExit(f"needs PostgreSQL: {reason}")
    from nightshard_dev import demo

    root = Path(tempfile.mkdtemp(prefix="nightshard-bench-orchestration-"))
    (root / "home").mkdir()
    logs = root / "component-logs"
    logs.mkdir()
    database = f"nightshard_bench_{secrets.token_hex(4)}"
    database_url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    port = free_port()
    stack = AirflowStack(base_url=f"http://127.0.0.1:{port}", home=root / "home", airflow_home=root / "airflow",
                         logs=logs)
    psql(f"CREATE DATABASE {database}")
    try:
        environment = stack.environment = stack_environment(
            root, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}", port)
        pipelines = root / "bench-pipelines"
        pipelines.mkdir()
        (pipelines / "scale_trivial.yaml").write_text(
            CONFIG.format(shard_rows=arguments.shard_rows, parallelism=arguments.parallelism))
        environment["NIGHTSHARD_PIPELINES_DIR"] = str(pipelines)
        environment["AIRFLOW__CORE__PARALLELISM"] = str(arguments.parallelism)
        environment["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] = str(arguments.parallelism)
        environment["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"] = str(arguments.parallelism)
        demo.train_risk_model(stack.home / "models", rows=2000, epochs=1)
        demo.make_risk_partition(stack.home / "data", DS, rows=arguments.shards * arguments.shard_rows,
                                 files=max(1, arguments.shards // 100), row_group_rows=arguments.shard_rows)
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=environment, capture_output=True, text=True)
        if migrate.returncode != 0:
            raise SystemExit(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
        for name in COMPONENTS:
            stack.start_component(name)
        wait_until_healthy(stack)
        stack.token = log_in(stack)
        wait_for_dag(stack, DAG_ID, timeout=300)
        if arguments.committed:
            print(f"scored {score_outside_airflow(stack, pipelines)} shards outside Airflow", flush=True)
        cpu_before, load_samples = stack_cpu_seconds(stack), []
        run_id = stack.trigger(DAG_ID, DS, "orchestration_load")
        started = time.monotonic()
        state = "running"
        while time.monotonic() - started < arguments.timeout:
            state = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                break
            time.sleep(15)
            load_samples.append(os.getloadavg()[0])
            progress = measure(database_url, run_id, arguments.parallelism)
            print(f"{time.monotonic() - started:7.0f} s: {progress['shards_finished']}/{progress['shards']} shards",
                  flush=True)
        report = measure(database_url, run_id, arguments.parallelism)
        report.update({"committed_before_the_run": arguments.committed, "run_state": state, "trigger_to_end_seconds": round(time.monotonic() - started, 1),
                       "shard_rows": arguments.shard_rows})
        stack_cpu = stack_cpu_seconds(stack) - cpu_before
        report["stack_core_seconds"] = round(stack_cpu, 1)
        report["stack_core_seconds_per_shard"] = round(stack_cpu / max(1, report["shards"]), 2)
        report["load_average_median"] = round(statistics.median(load_samples), 1) if load_samples else None
        report["cores"] = os.cpu_count()
        print(json.dumps(report, indent=2))
        if arguments.output:
            Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")
        if state == "failed":
            print(stack.component_logs())
    finally:
        stop_processes(stack.processes)
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
