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
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from nightshard_worker import storage as worker_storage

filesystem = worker_storage.resolve
is_local = worker_storage.is_local
exists = worker_storage.exists
write_bytes_atomic = worker_storage.write_bytes_atomic
file_size = worker_storage.size


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
