"""Storage at the edges, for the DAG side: local paths and gs:// alike.

Built on the worker's own storage module (`nightshard_worker.storage`), so both sides resolve
filesystems and write atomically the same way; this module adds what only the DAG needs (listings,
JSON documents, checksums of remote files).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from fsspec.implementations.local import LocalFileSystem

from nightshard_worker import storage as worker_storage

filesystem = worker_storage.resolve
is_local = worker_storage.is_local
exists = worker_storage.exists
write_bytes_atomic = worker_storage.write_bytes_atomic
file_size = worker_storage.size

T = TypeVar("T")
R = TypeVar("R")


def join(uri: str, *parts: str) -> str:
    return posixpath.join(uri.rstrip("/"), *parts)


def read_text(uri: str) -> str:
    fs, path = filesystem(uri)
    with fs.open(path, "r") as handle:
        return handle.read()


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_text_atomic(uri: str, text: str) -> None:
    write_bytes_atomic(uri, text.encode())


def write_json_atomic(uri: str, document: Any) -> None:
    write_text_atomic(uri, json.dumps(document, indent=2, sort_keys=True) + "\n")


def list_files(uri: str) -> list[str]:
    """Full URIs of the plain files directly under a folder, sorted; [] when it does not exist."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    entries = fs.ls(path, detail=True)
    protocol = _protocol_prefix(uri)
    return sorted(protocol + entry["name"] for entry in entries if entry["type"] == "file")


def list_file_sizes(uri: str) -> list[tuple[str, int]]:
    """(full URI, size in bytes) of the plain files directly under a folder, sorted; one listing call."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    protocol = _protocol_prefix(uri)
    return sorted(
        (protocol + entry["name"], int(entry["size"])) for entry in fs.ls(path, detail=True) if entry["type"] == "file"
    )


def read_tail(uri: str, size: int, length: int) -> bytes:
    """The last `length` bytes of a file of known size: one ranged read, no stat."""
    fs, path = filesystem(uri)
    start = max(0, size - length)
    if start == 0 and length >= size:
        return fs.cat_file(path)
    return fs.cat_file(path, start=start, end=size)


def sha256_of(uri: str, chunk_bytes: int = 8 << 20) -> str:
    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def remove(uri: str, recursive: bool = False) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def remove_if_empty(uri: str) -> None:
    """Drop a local folder left empty; object stores have no empty folders to drop."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem) and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _protocol_prefix(uri: str) -> str:
    if "://" in uri:
        return uri.split("://", 1)[0] + "://"
    return ""


# Enough requests in flight to hide an object store's round trips (a GCS footer read is 2-3 of them,
# ~30-60 ms each), few enough that the plan task's threads and sockets stay a small, fixed cost.
DEFAULT_CONCURRENCY = 32


def map_bounded(function: Callable[[T], R], items: Iterable[T], concurrency: int = DEFAULT_CONCURRENCY) -> Iterator[R]:
    """function(item) for each item, at most `concurrency` calls in flight, results in input order.

    Items are taken from the iterable only as slots free up, so neither the inputs nor the results
    waiting to be read pile up beyond `concurrency`; the first error raised is re-raised here (the
    calls already in flight finish, none is started after it).
    """
    if concurrency <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="storage") as pool:
        in_flight: deque[Future[R]] = deque()
        try:
            for item in items:
                if len(in_flight) >= concurrency:
                    yield in_flight.popleft().result()
                in_flight.append(pool.submit(function, item))
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()
