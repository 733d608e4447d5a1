"""Runs one pipeline DAG with dag.test() in a fresh process and prints its task logs to stdout.

    python fresh_process_run.py <dag_id> <ds>[,<ds>...] <run conf as JSON> [fake worker script]

A fresh process gives each test its own stdout for the task log (Airflow's in-process logging binds
to the first stdout it sees). Retries are off so a failure fails at once; with a fake worker script,
`infer` runs that script instead of nightshard-worker.
"""

from __future__ import annotations

import datetime as dt
import json
import sys


def main(dag_id: str, dates: str, conf: str, fake_worker: str | None = None) -> None:
    from pipeline_runs import load_dag, task_states

    if fake_worker:
        from nightshard.operators import local_worker

        local_worker.worker_command = lambda spec_uri: [sys.executable, fake_worker, "run", "--spec", spec_uri]
    dag = load_dag(dag_id)
    for task in dag.tasks:
        if hasattr(task, "partial_kwargs"):
            task.partial_kwargs["retries"] = 0
        else:
            task.retries = 0
    for ds in dates.split(","):  # one process for several dates: Airflow's start-up is paid once
        print(f"RUN OF {ds}", flush=True)
        dag_run = dag.test(logical_date=dt.datetime.fromisoformat(ds).replace(hour=3, tzinfo=dt.timezone.utc),
                           run_conf=json.loads(conf) or None)
        print("TASK STATES " + json.dumps(task_states(dag_run)), flush=True)
        print("RUN ID " + dag_run.run_id, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])


def run_in_fresh_process(dag_id: str, ds: str, conf: dict, fake_worker: str | None = None,
                         timeout_seconds: int = 300) -> tuple[dict, str, str]:
    """(task states, run id, everything the run printed); the environment is the caller's."""
    [(states, run_id, output)] = runs_in_fresh_process(dag_id, [ds], conf, fake_worker, timeout_seconds)
    return states, run_id, output


def runs_in_fresh_process(dag_id: str, dates: list[str], conf: dict, fake_worker: str | None = None,
                          timeout_seconds: int = 300) -> list[tuple[dict, str, str]]:
    """One (task states, run id, printed output) per date, run one after the other in one process."""
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    command = [sys.executable, __file__, dag_id, ",".join(dates), json.dumps(conf)]
    command += [fake_worker] if fake_worker else []
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "plugins"), str(repo / "tests")])}
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout_seconds)
    everything = finished.stdout + finished.stderr
    runs = []
    for section in finished.stdout.split("RUN OF ")[1:]:
        marks = {key: line[len(key):] for line in section.splitlines()
                 for key in ("TASK STATES ", "RUN ID ") if line.startswith(key)}
        assert "TASK STATES " in marks, f"the run did not finish (exit {finished.returncode}):\n{everything[-4000:]}"
        runs.append((json.loads(marks["TASK STATES "]), marks["RUN ID "], section))
    assert len(runs) == len(dates), f"exit {finished.returncode}:\n{everything[-4000:]}"
    if len(dates) == 1:  # a single run also gets what Airflow wrote to stderr
        runs[0] = (runs[0][0], runs[0][1], everything)
    return runs
