"""The real Airflow stack for the slow deployment tests: api-server, scheduler, dag-processor and
triggerer as subprocesses on loopback, on a fresh PostgreSQL database of their own, with demo data in
a temporary NIGHTSHARD_HOME. Started once per session, torn down (process groups, database) even when
a test fails.

LocalExecutor, not Celery: the compose file runs Celery, but here a Celery worker would be a fifth
Airflow process and the celery provider + broker round trips on a 2-core CI machine, while what these
tests prove (the real scheduler, triggerer and REST/UI path on PostgreSQL) does not depend on the
executor.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hang_guard import hang_guard

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
POSTGRES_ADMIN_URL = os.environ.get("NIGHTSHARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PIPELINE_DAG_ID = "nightshard_tabular_risk"
# Partitions the REST tests score, and the ones the UI backfill scores (kept apart so neither test
# depends on the other's runs).
REST_DATES = ("2026-11-20", "2026-11-21", "2026-11-22")
UI_DATES = ("2026-11-18", "2026-11-19")
# Partitions the component-restart tests score with the slowed pipeline (test_component_restarts.py).
RESTART_DATES = ("2026-11-14", "2026-11-15", "2026-11-16")
SLOW_DAG_ID = "nightshard_slow_risk"
DEMO_INPUT_ROWS = 3000  # two files of 3 row groups each: 3 shards at shard_rows=1000
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STARTUP_TIMEOUT_SECONDS = hang_guard(180)  # cold imports of four Airflow processes on two shared cores
WORKER_CLI = REPO / "worker" / "src" / "nightshard_worker" / "cli.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", POSTGRES_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True, capture_output=True, text=True,
    )


def postgres_available() -> str | None:
    if shutil.which("psql") is None:
        return "psql is not installed"
    try:
        psql("select 1")
    except subprocess.CalledProcessError as error:
        return f"PostgreSQL at {POSTGRES_ADMIN_URL} refused: {error.stderr.strip()}"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    return None


@dataclass
class AirflowStack:
    """Handles on the running stack: its URL, a REST client with a JWT, its folders and logs."""

    base_url: str
    home: Path
    airflow_home: Path
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    token: str = ""

    def kill_component(self, name: str, with_descendants: bool = True) -> None:
        """SIGKILL the component's process group; with its descendants too (the Airflow task supervisor
        starts tasks in sessions of their own), as when its container dies."""
        import psutil

        process = self.processes[name]
        descendants = psutil.Process(process.pid).children(recursive=True) if with_descendants else []
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for descendant in descendants:
            try:
                descendant.kill()
            except psutil.NoSuchProcess:
                pass
        process.wait(timeout=30)

    def start_component(self, name: str) -> None:
        self.processes[name] = start_component(name, self.environment, self.logs)

    def api(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        import requests

        response = requests.request(
            method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
        )
        assert response.status_code in expect, f"{method} {path} -> {response.status_code}: {response.text[:2000]}"
        return response.json() if response.content else None

    def trigger(self, dag_id: str, ds: str, run_id: str, conf: dict[str, Any] | None = None) -> str:
        """Create a run for partition `ds` with the data interval the DAG's daily schedule gives it."""
        start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
        self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={
            "dag_run_id": run_id, "logical_date": start.isoformat(), "data_interval_start": start.isoformat(),
            "data_interval_end": (start + dt.timedelta(days=1)).isoformat(), "conf": {"ds": ds, **(conf or {})},
        })
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        return run_id

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def dag_runs(self, dag_id: str = PIPELINE_DAG_ID) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def wait_for_runs(self, run_ids: set[str], timeout: float, dag_id: str = PIPELINE_DAG_ID) -> dict[str, dict]:
        """Waits until every run is finished; fails early, with its task states, on a failed run."""
        deadline = time.monotonic() + timeout
        while True:
            runs = {run["dag_run_id"]: run for run in self.dag_runs(dag_id) if run["dag_run_id"] in run_ids}
            failed = [run_id for run_id, run in runs.items() if run["state"] == "failed"]
            if failed:
                raise AssertionError(f"run(s) failed: {failed}\n{self.task_states(failed, dag_id)}\n"
                                     f"{self.component_logs()}")
            if len(runs) == len(run_ids) and all(run["state"] == "success" for run in runs.values()):
                return runs
            if time.monotonic() > deadline:
                states = {run_id: run["state"] for run_id, run in runs.items()}
                raise AssertionError(f"runs not finished after {timeout:.0f} s: {states}\n"
                                     f"{self.task_states(list(runs), dag_id)}\n{self.component_logs()}")
            time.sleep(3)

    def wait_for_backfills_to_complete(self, timeout: float = 120, dag_id: str = PIPELINE_DAG_ID) -> None:
        """Waits until the scheduler marks every backfill of the DAG completed. It does so a loop after
        the backfill's last run succeeds, and until then Airflow refuses a new backfill (409 Conflict)."""
        deadline = time.monotonic() + timeout
        while True:
            running = [backfill["id"] for backfill in self.api("GET", "/api/v2/backfills",
                                                                params={"dag_id": dag_id})["backfills"]
                       if not backfill.get("completed_at")]
            if not running:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backfill(s) {running} not completed after {timeout:.0f} s\n"
                                     f"{self.component_logs()}")
            time.sleep(2)

    def task_states(self, run_ids: list[str], dag_id: str = PIPELINE_DAG_ID) -> str:
        lines = []
        for run_id in run_ids:
            instances = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
            lines.append(run_id + ": " + ", ".join(
                f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in instances))
        return "\n".join(lines)

    def component_logs(self, tail_lines: int = 80) -> str:
        chunks = []
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail_lines:]
            chunks.append(f"===== {path.name} (last {len(lines)} lines) =====\n" + "\n".join(lines))
        for path in sorted((self.airflow_home / "logs").rglob("*.log"))[-6:]:
            lines = path.read_text(errors="replace").splitlines()[-40:]
            chunks.append(f"===== task log {path.relative_to(self.airflow_home)} =====\n" + "\n".join(lines))
        return "\n".join(chunks)


def make_demo_home(home: Path) -> None:
    from nightshard_dev import demo

    demo.train_risk_model(home / "models", rows=2000, epochs=3)
    for ds in REST_DATES + UI_DATES + RESTART_DATES:
        demo.make_risk_partition(home / "data", ds, rows=DEMO_INPUT_ROWS, files=2, row_group_rows=500)


def make_pipelines_dir(root: Path) -> Path:
    """The repo's pipelines, plus `slow_risk`: the risk scorer paused per batch (a test handler), so a
    test can restart Airflow components while its shard runs."""
    pipelines = root / "pipelines"
    shutil.copytree(REPO / "dags" / "pipelines", pipelines)
    shutil.copy(Path(__file__).with_name("slow_risk.yaml"), pipelines / "slow_risk.yaml")
    return pipelines


def stack_environment(root: Path, database_url: str, port: int) -> dict[str, str]:
    passwords_file = root / "passwords.json"
    passwords_file.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
    base_url = f"http://127.0.0.1:{port}"
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith("AIRFLOW__") and key not in ("AIRFLOW_HOME", "NIGHTSHARD_HOME")
    }
    environment.update({
        "AIRFLOW_HOME": str(root / "airflow"),
        "NIGHTSHARD_HOME": str(root / "home"),
        # tests/worker: the slow_risk pipeline's handler (worker_test_handlers) imports in the worker.
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO / "tests" / "worker")]),
        "NIGHTSHARD_PIPELINES_DIR": str(make_pipelines_dir(root)),
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": "",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        # Every component signs or checks task and UI tokens: they must share one secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Only the runs a test asks for: no scheduled run for "yesterday" (whatever the clock says)
        # takes the DAG's single active-run slot and waits six hours for a partition nobody wrote.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Re-list the dags folder often, so a test never waits minutes for the first parse.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # A killed scheduler's running tasks are reset (and retried) by the next scheduler once the dead
        # one has missed heartbeats for scheduler_health_check_threshold (30 s), checked this often:
        # seconds after the restart, not up to five minutes (the default interval).
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
        # A dead triggerer's deferred tasks move to a live one after this long.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "20",
    })
    return environment


def start_component(name: str, environment: dict[str, str], logs: Path) -> subprocess.Popen:
    command = [AIRFLOW, *name.split()]
    if name == "api-server":
        command += ["--host", "127.0.0.1", "--port", environment["AIRFLOW__API__PORT"], "--workers", "1"]
    log = open(logs / f"{name}.log", "wb")
    # A session of its own: teardown signals the whole group (LocalExecutor workers, supervisors).
    return subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes.values():
        # The group may outlive its leader (a task supervisor): SIGKILL what is left of it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_until_healthy(stack: AirflowStack) -> None:
    import requests

    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last = "api-server not answering"
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}\n{stack.component_logs()}")
        try:
            health = requests.get(f"{stack.base_url}/api/v2/monitor/health", timeout=5).json()
            unhealthy = {part: state.get("status") for part, state in health.items()
                         if isinstance(state, dict) and state.get("status") != "healthy"}
            if not unhealthy:
                return
            last = f"unhealthy: {unhealthy}"
        except (requests.RequestException, ValueError) as error:
            last = f"api-server not answering: {error}"
        time.sleep(2)
    raise RuntimeError(f"stack not healthy after {STARTUP_TIMEOUT_SECONDS} s ({last})\n{stack.component_logs()}")


def log_in(stack: AirflowStack) -> str:
    import requests

    response = requests.post(f"{stack.base_url}/auth/token",
                             json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}, timeout=30)
    assert response.status_code == 201, f"POST /auth/token -> {response.status_code}: {response.text}"
    return response.json()["access_token"]


def wait_for_dag(stack: AirflowStack, dag_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        errors = stack.api("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, f"import errors in the dags folder: {errors}"
        if stack.api("GET", f"/api/v2/dags/{dag_id}", expect=(200, 404)).get("dag_id") == dag_id:
            return
        time.sleep(2)
    raise AssertionError(f"{dag_id} was not parsed within {timeout:.0f} s\n{stack.component_logs()}")


def require_worker() -> None:
    if not WORKER_CLI.exists():
        pytest.skip(f"{WORKER_CLI.relative_to(REPO)} is not there yet: infer cannot score a shard without the worker")
