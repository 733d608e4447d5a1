"""README's two commands install what each needs: setup only the .venv, the test command the test tools too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_TOOL_SCRIPTS = ("install-tools.sh", "install-pushgateway.sh", "install-browser.sh")
LINT_SCRIPT = "lint.sh"


def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the scripts whose tool installers and python only record that they ran."""
    root = tmp_path / "clone"
    (root / "worker").mkdir(parents=True)
    (root / "plugins").mkdir()
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "requirements.lock", root / "requirements.lock")
    shutil.copy(REPO / "worker" / "pyproject.toml", root / "worker" / "pyproject.toml")
    shutil.copy(REPO / "plugins" / "pyproject.toml", root / "plugins" / "pyproject.toml")
    calls = tmp_path / "calls.log"
    for name in (*TEST_TOOL_SCRIPTS, LINT_SCRIPT):
        (root / "scripts" / name).write_text(f"#!/usr/bin/env bash\necho {name} >> {calls}\n")
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/usr/bin/env bash\necho python \"$@\" >> {calls}\n")
    python.chmod(0o755)
    return root, calls


def ran(calls: Path) -> list[str]:
    return calls.read_text().split("\n") if calls.exists() else []


def test_setup_installs_only_what_running_needs_and_the_test_command_adds_the_test_tools(tmp_path):
    root, calls = sandbox(tmp_path)
    subprocess.run(["bash", "scripts/install.sh"], cwd=root, check=True, capture_output=True, timeout=60)
    assert not any(name in ran(calls) for name in TEST_TOOL_SCRIPTS), ran(calls)

    subprocess.run(["bash", "scripts/test.sh", "-k", "nothing"], cwd=root, check=True, capture_output=True, timeout=60)
    assert [line for line in ran(calls) if line.endswith(".sh")] == [*TEST_TOOL_SCRIPTS, LINT_SCRIPT]
    assert ran(calls)[-2].startswith("python -m pytest tests")
