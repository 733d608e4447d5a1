"""`nightshard-worker run --spec ...` with a fault injected at a chunk commit, picked per shard.

NIGHTSHARD_FAULTS='{"<ds>/<model_version>/<shard_index>": "<fault>"}' names the shards; the others run untouched.
Faults (each strikes at the worker's second chunk, i.e. after one chunk is durably committed):
- sigkill: the chunk file is written, then the process gets SIGKILL before its progress record
  names the chunk (an orphan chunk a resume must discard), exactly what `kill -9` mid-commit does;
- sigterm: SIGTERM right after the first commit, as a node preemption sends it (worker exits 75); once
  per shard when NIGHTSHARD_FAULT_MARKERS names a folder, so the operator's in-try rerun runs clean;
- enospc: the chunk write fails with ENOSPC (disk full) before anything is written;
- hang: the worker stops making progress after the first commit (the test kills the whole run).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time


def install(fault: str) -> None:
    from nightshard_worker import storage

    original = storage.write_bytes_atomic
    chunk_writes = []

    def faulty_write(uri: str, payload: bytes) -> None:
        is_chunk = os.path.basename(uri).startswith("output-")
        if is_chunk:
            chunk_writes.append(uri)
        second_chunk = is_chunk and len(chunk_writes) == 2
        if second_chunk and fault == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device (injected)", uri)
        if second_chunk and fault == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # delivered between forward passes, like a preemption
        if second_chunk and fault == "hang":
            print("FAULT hang: first chunk committed, hanging", flush=True)
            time.sleep(600)
        original(uri, payload)
        if second_chunk and fault == "sigkill":
            print("FAULT sigkill: chunk written, progress record not yet", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    storage.write_bytes_atomic = faulty_write


def struck_before(key: str) -> bool:
    """True when this one-shot fault already struck this shard (a marker file per shard)."""
    markers = os.environ.get("NIGHTSHARD_FAULT_MARKERS")
    if not markers:
        return False
    marker = os.path.join(markers, key.replace("/", "_"))
    if os.path.exists(marker):
        return True
    open(marker, "w").close()
    return False


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[argv.index("--spec") + 1]).read())
    faults = json.loads(os.environ.get("NIGHTSHARD_FAULTS", "{}"))
    key = f"{spec['ds']}/{spec['model']['version']}/{spec['shard_index']}"
    fault = faults.get(key)
    if fault == "sigterm" and struck_before(key):
        fault = None
    if fault:
        install(fault)
    from nightshard_worker.cli import main as worker_main

    return worker_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
