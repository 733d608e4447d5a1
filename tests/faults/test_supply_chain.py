"""What is built, read statically: the worker image runs as a non-root user, and every dependency is pinned.

The pod's security context (non-root, read-only root filesystem, no privilege escalation, all
capabilities dropped, seccomp RuntimeDefault) is proven by
tests/gke/test_pod_builder.py::test_pod_passes_the_restricted_pod_security_standard, and the RBAC
Role by tests/gke/test_helm_chart.py::test_launcher_role_grants_exactly_what_the_pod_operator_calls.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")


def test_worker_image_ends_as_a_non_root_numeric_user():
    instructions = [line.strip() for line in (REPO / "worker" / "Dockerfile").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    users = [line.split(None, 1)[1].strip() for line in instructions if line.upper().startswith("USER ")]
    assert users, "the worker Dockerfile never sets USER: the container would run as root"
    final = users[-1].split(":")[0]
    assert final.isdigit() and int(final) != 0, f"final USER is {users[-1]!r}: use a numeric non-root uid"
    # the uid must exist in the image, else some tools fail on a missing passwd entry
    assert any(f"--uid {final}" in line for line in instructions if line.startswith("RUN"))


def test_every_locked_requirement_is_pinned_to_one_version():
    lines = [line.strip() for line in (REPO / "requirements.lock").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert len(requirements) > 100
    loose = [line for line in requirements if not PINNED.match(line)]
    assert not loose, f"not pinned as name==version: {loose}"
