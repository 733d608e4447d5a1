"""Runs pipeline DAGs with dag.test() in a fresh process, one after the other, and prints their task logs.

    python dag_runner.py <dag_id> '<JSON list of {"ds": ..., "conf": {...}}>' [worker wrapper script]

A fresh process gives each test its own stdout for the task log (Airflow's in-process logging binds
to the first stdout it sees); several dates in one process pay Airflow's start-up once. Each run has
its own conf, a run whose params are refused is reported instead of crashing the process, and retries
are off so that a fault fails its task at once: a test plays the retry by running the date again,
which is what clearing the failed task does. With a worker wrapper script, `infer` runs that script
instead of nightshard-worker.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from hang_guard import hang_guard

REPO = Path(__file__).resolve().parents[1]


def main(dag_id: str, runs: str, worker_wrapper: str | None = None) -> None:
    from pipeline_runs import load_dag, task_states

    if worker_wrapper:
        from nightshard.backends.local import operator as local_worker

        local_worker.worker_command = lambda spec_uri: [sys.executable, worker_wrapper, "run", "--spec", spec_uri]
    dag = load_dag(dag_id)
    for task in dag.tasks:
        if hasattr(task, "partial_kwargs"):
            task.partial_kwargs["retries"] = 0
        else:
            task.retries = 0
    for run in json.loads(runs):
        print(f"RUN OF {run.get('label', run['ds'])}", flush=True)
        logical_date = dt.datetime.fromisoformat(run["ds"]).replace(hour=3, tzinfo=dt.UTC)
        try:
            dag_run = dag.test(logical_date=logical_date, run_conf=run.get("conf") or None)
        except Exception as error:  # a refused param never becomes a run
            print("RUN REFUSED " + json.dumps(f"{type(error).__name__}: {error}"), flush=True)
            traceback.print_exc(file=sys.stdout)
            continue
        print("TASK STATES " + json.dumps(task_states(dag_run)), flush=True)
        print("RUN ID " + dag_run.run_id, flush=True)


def runner_command(dag_id: str, runs: list[dict], worker_wrapper: str | None = None) -> list[str]:
    command = [sys.executable, __file__, dag_id, json.dumps(runs)]
    return command + ([worker_wrapper] if worker_wrapper else [])


def runner_environment(**extra: str) -> dict[str, str]:
    # this checkout's worker too: the .venv's editable install may point at another checkout (a worktree)
    path = os.pathsep.join([str(REPO / "plugins"), str(REPO / "worker" / "src"), str(REPO / "tests")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def start_runs(dag_id: str, runs: list[dict], worker_wrapper: str | None = None, **extra_env: str) -> subprocess.Popen:
    """Start the runner in its own process group (so a test can kill it whole, like a dying host)."""
    return subprocess.Popen(runner_command(dag_id, runs, worker_wrapper), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=runner_environment(**extra_env),
                            start_new_session=True)


def parse_runs(output: str) -> dict[str, dict]:
    """{label: {"states": ..., "run_id": ..., "refused": ..., "log": section}} for every run the output shows;
    a run's label is its ds unless the run names one."""
    parsed = {}
    for section in output.split("RUN OF ")[1:]:
        ds = section.split("\n", 1)[0].strip()
        entry: dict = {"log": section, "states": None, "run_id": None, "refused": None}
        for line in section.splitlines():
            if line.startswith("TASK STATES "):
                entry["states"] = json.loads(line[len("TASK STATES "):])
            elif line.startswith("RUN ID "):
                entry["run_id"] = line[len("RUN ID "):]
            elif line.startswith("RUN REFUSED "):
                entry["refused"] = json.loads(line[len("RUN REFUSED "):])
        parsed[ds] = entry
    return parsed


def run_dates(dag_id: str, runs: list[dict], worker_wrapper: str | None = None, timeout_seconds: int = 240,
              **extra_env: str) -> tuple[dict[str, dict], str]:
    """Run every date to its end; returns (parsed runs by label, everything printed)."""
    finished = subprocess.run(runner_command(dag_id, runs, worker_wrapper), capture_output=True, text=True,
                              env=runner_environment(**extra_env), timeout=hang_guard(timeout_seconds))
    output = finished.stdout + finished.stderr
    parsed = parse_runs(finished.stdout)
    labels = [r.get("label", r["ds"]) for r in runs]
    missing = [label for label in labels if label not in parsed or
               (parsed[label]["states"] is None and parsed[label]["refused"] is None)]
    assert not missing, f"runs of {missing} did not finish (exit {finished.returncode}):\n{output[-5000:]}"
    return parsed, output


def runs_with_one_conf(dag_id: str, dates: list[str], conf: dict, worker_wrapper: str | None = None,
                       timeout_seconds: int = 300) -> list[tuple[dict, str, str]]:
    """One (task states, run id, printed output) per date, all with the same conf; a single date's
    output also holds what Airflow wrote to stderr."""
    parsed, output = run_dates(dag_id, [{"ds": ds, "conf": conf} for ds in dates], worker_wrapper,
                               timeout_seconds)
    runs = [(parsed[ds]["states"], parsed[ds]["run_id"], parsed[ds]["log"]) for ds in dates]
    assert all(states is not None for states, _, _ in runs), f"a run was refused:\n{output[-4000:]}"
    if len(dates) == 1:
        runs[0] = (runs[0][0], runs[0][1], output)
    return runs


def task_log(section: str, task_id: str) -> str:
    """The lines dag.test() printed while running `task_id` (every map index and try)."""
    lines, inside = [], False
    for line in section.splitlines():
        if f"[DAG TEST] starting task_id={task_id} " in line:
            inside = True
        if inside:
            lines.append(line)
        if f"[DAG TEST] end task task_id={task_id} " in line:
            inside = False
    return "\n".join(lines)


if __name__ == "__main__":
    main(*sys.argv[1:])
