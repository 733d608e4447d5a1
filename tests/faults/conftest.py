"""Fixtures of the fault suite: a NIGHTSHARD_HOME per module (a scenario's runs build on each other),
tiny demo data, and the session summary of rows lost and duplicated that docs/faults.md quotes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.invariant import summary_lines

RISK_DAG = "nightshard_tabular_risk"
ID_COLUMN = "customer_id"


def risk_input(home: Path, ds: str) -> Path:
    return home / "data" / "features" / "risk" / f"ds={ds}"


def risk_output(home: Path, ds: str, model_version: str = "v1") -> Path:
    return home / "predictions" / "tabular_risk" / f"model_version={model_version}" / f"ds={ds}"


def risk_staging(home: Path, ds: str, model_version: str = "v1") -> Path:
    return home / "predictions" / "tabular_risk" / f"model_version={model_version}" / "_staging" / f"ds={ds}"


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory, airflow_db) -> Iterator[Path]:
    """A NIGHTSHARD_HOME with the demo risk model (v1, and v0 as a copy) shared by one module's runs."""
    from nightshard_dev import demo

    home = tmp_path_factory.mktemp("faults") / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NIGHTSHARD_HOME", str(home))
        demo.train_risk_model(home / "models", rows=2000, epochs=3)
        shutil.copytree(home / "models" / "tabular_risk" / "v1", home / "models" / "tabular_risk" / "v0")
        yield home


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = summary_lines()
    if lines:
        terminalreporter.write_sep("-", "nightshard faults: rows per checked partition")
        for line in lines:
            terminalreporter.write_line(line)
