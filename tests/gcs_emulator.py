"""A real GCS API on loopback: PyPI's gcp-storage-emulator, started and stopped by the tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def emulator_executable() -> list[str]:
    return [str(Path(sys.executable).with_name("gcp-storage-emulator"))]


@contextlib.contextmanager
def gcs_emulator(log_path: Path, *, data_dir: Path | None = None, port: int | None = None,
                 launcher: Sequence[str] | None = None) -> Iterator[str]:
    """The emulator's URL while it runs: in memory by default, or serving (and writing) `data_dir`.

    `launcher` replaces the `gcp-storage-emulator` command (the benchmarks start it through
    bench.emulator); the emulator's own arguments are appended to it.
    """
    port = port or free_port()
    storage = ["--data-dir", str(data_dir)] if data_dir else []
    command = [*(launcher or emulator_executable()), *storage, "start", "--host=127.0.0.1", f"--port={port}",
               *([] if data_dir else ["--in-memory"])]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1)
                break
            except OSError as error:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError(f"GCS emulator did not start; see {log_path}") from error
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
