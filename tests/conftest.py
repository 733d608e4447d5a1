"""Test environment: an isolated AIRFLOW_HOME on SQLite, the repo's dags/ and plugins/, a fresh
NIGHTSHARD_HOME per test. Set before Airflow is imported anywhere, which is why it lives here."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="nightshard-tests-"))

os.environ.setdefault("AIRFLOW_HOME", str(_SESSION_HOME / "airflow"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.setdefault("NIGHTSHARD_HOME", str(_SESSION_HOME / "home"))
# gcsfs's experimental gRPC path ignores STORAGE_EMULATOR_HOST and hangs against the GCS emulator
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def airflow_environment(**overrides: str) -> dict[str, str]:
    return {**os.environ, **overrides}


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database, once per session."""
    subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        check=True,
        env=airflow_environment(),
        capture_output=True,
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def nightshard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NIGHTSHARD_HOME", str(home))
    return home
