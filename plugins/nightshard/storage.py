"""Storage at the edges: one small fsspec layer for local paths and gs:// alike.

Everything that touches files goes through here, so the same code path serves the embedded default
(local filesystem) and GKE (Cloud Storage). Local writes are made atomic with a temp file and
`os.replace`; object stores make an object visible only once it is whole, so a single put suffices.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if "://" in uri and not uri.startswith("file://"):
        # Other processes (workers, upstream jobs) change these folders: a cached listing would
        # hide a marker that just appeared or a file a worker just wrote.
        return fsspec.core.url_to_fs(uri, use_listings_cache=False)
    return fsspec.core.url_to_fs(uri)


def is_local(uri: str) -> bool:
    return isinstance(filesystem(uri)[0], LocalFileSystem)


def join(uri: str, *parts: str) -> str:
    return posixpath.join(uri.rstrip("/"), *parts)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def read_text(uri: str) -> str:
    fs, path = filesystem(uri)
    with fs.open(path, "r") as handle:
        return handle.read()


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_bytes_atomic(uri: str, payload: bytes) -> None:
    """Write a whole file so that a reader sees the old content or the new, never a part."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return
    with fs.open(path, "wb") as handle:
        handle.write(payload)


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


def file_size(uri: str) -> int:
    fs, path = filesystem(uri)
    return int(fs.size(path))


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


def move(source_uri: str, target_uri: str) -> None:
    fs, source = filesystem(source_uri)
    _, target = filesystem(target_uri)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(source, target)
    else:
        fs.mv(source, target)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def _protocol_prefix(uri: str) -> str:
    if "://" in uri:
        return uri.split("://", 1)[0] + "://"
    return ""
