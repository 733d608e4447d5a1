"""Real servers on loopback for the reporting tests: a Prometheus Pushgateway and the Pub/Sub emulator.

Each is started in its own process group, stopped with it at the end of the session, and asked by the
kernel (PR_SET_PDEATHSIG) to stop when pytest itself dies, e.g. killed by a CI timeout: nothing
outlives the test session. Missing binaries skip with the command that installs them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hang_guard import hang_guard

from reporting.servers import free_port

PUSHGATEWAY_BINARY = "/usr/bin/prometheus-pushgateway"
SERVER_START_SECONDS = hang_guard(60)  # the Pub/Sub emulator is a JVM; a busy 2-core machine needs most of this


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def stop_when_pytest_dies() -> None:
    """preexec_fn: SIGTERM this process when its parent (pytest) exits; kept across exec."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def emulator_command(gcloud: str, port: int, data_dir: Path) -> list[str]:
    """The emulator `gcloud beta emulators pubsub start` would exec, called directly so that it (a
    JVM started by `exec`) is pytest's own child and gets the parent-death signal; gcloud otherwise."""
    script = (Path(os.path.realpath(gcloud)).parents[1] / "platform" / "pubsub-emulator" / "bin"
              / "cloud-pubsub-emulator")
    if script.is_file():
        return [str(script), "--host=127.0.0.1", f"--port={port}"]
    return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
            "--project=nightshard-test", f"--data-dir={data_dir}", "--quiet"]


def wait_until_answers(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group: gcloud leaves its JVM running even after it exits."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Pushgateway on a free loopback port."""
    if not os.access(PUSHGATEWAY_BINARY, os.X_OK):
        pytest.skip(f"{PUSHGATEWAY_BINARY} missing: run bash scripts/install-pushgateway.sh")
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with log.open("w") as sink:
        process = subprocess.Popen([PUSHGATEWAY_BINARY, f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=stop_when_pytest_dies)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/-/ready", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of the Google Cloud CLI's Pub/Sub emulator."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        pytest.skip("gcloud missing: the Pub/Sub emulator ships with the Google Cloud CLI (pubsub-emulator component)")
    port = free_port()
    folder = tmp_path_factory.mktemp("pubsub")
    log = folder / "emulator.log"
    (folder / "data").mkdir()
    with log.open("w") as sink:
        process = subprocess.Popen(emulator_command(gcloud, port, folder / "data"), stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=stop_when_pytest_dies)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}", process, log)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)
