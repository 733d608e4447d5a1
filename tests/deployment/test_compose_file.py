"""docker-compose.yaml and the Airflow Dockerfile, checked offline (no Docker on the build machines)."""

from __future__ import annotations

import re

import pytest
import yaml

from deployment.real_stack import REPO

COMPOSE = REPO / "docker-compose.yaml"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker")
LONG_RUNNING = ("postgres", "redis", *AIRFLOW_SERVICES)
MONITORING = ("pushgateway", "prometheus", "grafana")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_component_of_the_official_layout_is_there(services):
    assert set(LONG_RUNNING) | {"airflow-init"} | set(MONITORING) <= set(services)
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-worker"]["command"] == "celery worker"


@pytest.mark.parametrize("name", LONG_RUNNING + MONITORING)
def test_long_running_service_has_a_healthcheck(services, name):
    healthcheck = services[name]["healthcheck"]
    assert healthcheck["test"] and healthcheck["interval"]


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_wait_for_a_healthy_database_broker_and_finished_init(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES + ("airflow-init",))
def test_airflow_services_share_executor_database_and_broker(services, name):
    environment = services[name]["environment"]
    reference = services["airflow-scheduler"]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
                "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__API_AUTH__JWT_SECRET", "NIGHTSHARD_HOME"):
        assert environment[key] == reference[key], key
    assert environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert environment["NIGHTSHARD_HOME"] == "/opt/nightshard/var"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES + ("airflow-init",))
def test_airflow_services_mount_dags_plugins_and_nightshard_home(services, name):
    volumes = services[name]["volumes"]
    for mount in ("./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins", "./var:/opt/nightshard/var"):
        assert mount in volumes
    assert (REPO / "dags").is_dir() and (REPO / "plugins").is_dir()


@pytest.mark.parametrize("name", AIRFLOW_SERVICES + ("airflow-init",))
def test_airflow_services_build_the_root_dockerfile(services, name):
    build = services[name]["build"]
    assert (REPO / build["context"] / build["dockerfile"]).is_file()


def test_monitoring_services_only_start_with_the_monitoring_profile(services):
    for name in MONITORING:
        assert services[name]["profiles"] == ["monitoring"]
    for name in (*LONG_RUNNING, "airflow-init"):
        assert "profiles" not in services[name]


def test_dockerfile_installs_the_lock_and_the_worker_as_the_airflow_user():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.M)
    user_line = dockerfile.index("USER airflow")
    assert "USER root" not in dockerfile[user_line:]
    assert re.search(r"pip install .*-r \S*requirements\.lock", dockerfile)
    assert re.search(r"pip install .*--no-deps \S*worker", dockerfile)
    assert dockerfile.index("pip install") > user_line
    assert 'apache-airflow==3.3.2' in (REPO / "requirements.lock").read_text()


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "var", "tools", ".git"} <= set(ignored)
