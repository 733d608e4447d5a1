"""Fixtures of the deployment tests: one real Airflow stack per session (see real_stack.py)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deployment.real_stack import (
    AIRFLOW,
    COMPONENTS,
    PIPELINE_DAG_ID,
    AirflowStack,
    free_port,
    log_in,
    make_demo_home,
    postgres_available,
    psql,
    stack_environment,
    stop_processes,
    wait_for_dag,
    wait_until_healthy,
)


@pytest.fixture(scope="session")
def airflow_stack(request: pytest.FixtureRequest):
    reason = postgres_available()
    if reason:
        pytest.skip(f"the real-scheduler tests need PostgreSQL: {reason}")
    root = Path(tempfile.mkdtemp(prefix="nightshard-stack-"))
    (root / "home").mkdir()
    logs = root / "component-logs"
    logs.mkdir()
    database = f"nightshard_test_{secrets.token_hex(4)}"
    port = free_port()
    stack = AirflowStack(base_url=f"http://127.0.0.1:{port}", home=root / "home", airflow_home=root / "airflow",
                         logs=logs)
    psql(f"CREATE DATABASE {database}")
    try:
        environment = stack.environment = stack_environment(
            root, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}", port)
        make_demo_home(stack.home)
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=environment, capture_output=True, text=True)
        assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout[-4000:]}\n{migrate.stderr[-4000:]}"
        for name in COMPONENTS:
            stack.start_component(name)
        wait_until_healthy(stack)
        stack.token = log_in(stack)
        wait_for_dag(stack, PIPELINE_DAG_ID)
        yield stack
    finally:
        stop_processes(stack.processes)
        if request.session.testsfailed:
            print(f"\n---- Airflow component logs ({root}) ----\n{stack.component_logs()}")
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        if not request.session.testsfailed:
            shutil.rmtree(root, ignore_errors=True)

