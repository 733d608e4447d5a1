"""The GCS emulator as the scale benchmarks run it: seeded on disk, with a listen queue for 32 in flight.

PyPI's gcp-storage-emulator has two costs that real GCS does not, both found by reading its source
(`gcp_storage_emulator/server.py`, `storage.py`) and measured here (bench/README.md, "Planning"):

- It serves one request at a time (`http.server.HTTPServer`, HTTP/1.0, so a connection per request)
  and listens with socketserver's default backlog of 5. With more than ~6 connections waiting, the
  kernel drops the rest of the handshakes (`TcpExtListenOverflows` counts them) and each client waits
  out TCP's 1 s SYN retransmission: 300 ranged reads ran at ~1,000/s with up to 6 in flight and at
  17-31/s with 8 to 32. `--listen-backlog` deepens that queue only; the emulator's own code still
  serves every request, one at a time.
- Every write (upload, resumable start, patch, delete) re-serialises the metadata of every object it
  holds (`Storage._write_config_to_file`: `json.dumps(indent=2)` of all objects, in its in-memory
  mode too), so a write costs more as the bucket fills: serial uploads fell from 365/s at 200 objects
  to 25/s at 3,000; at 11,000 objects the dump alone is ~250 ms. Filling a bucket by uploading is
  therefore quadratic: `seed_storage` writes the emulator's on-disk format (object files and one
  `.meta`, built with the emulator's own object-resource code) once, before it starts, and the
  emulator serves that state as if it had been uploaded.
- `--no-metadata-file` (a variant the benchmark reports separately, labelled as such) skips that
  rewrite, so a write costs the emulator what a read does: it shows what the client side costs when
  the server's writes do not grow with the bucket. Nothing reads the file back while the emulator runs
  (only at start-up), so the answers over HTTP are the same.

    python bench/emulator.py [--listen-backlog N] [--no-metadata-file] [gcp-storage-emulator arguments]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# Deeper than any concurrency the benchmarks use (storage.DEFAULT_CONCURRENCY is 32), so no connection
# waits out a SYN retransmission.
LISTEN_BACKLOG = 128

# BaseHTTPRequestHandler.log_request: '"GET /path?query HTTP/1.1" 200 -'
REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?"]+)\S* HTTP/[\d.]+" (?P<status>\d{3})')


def launcher(*, listen_backlog: int = LISTEN_BACKLOG, no_metadata_file: bool = False) -> list[str]:
    """The command that starts the emulator this way (tests/gcs_emulator.py appends its arguments)."""
    return [sys.executable, str(Path(__file__).resolve()), f"--listen-backlog={listen_backlog}",
            *(["--no-metadata-file"] if no_metadata_file else [])]


def seed_storage(data_dir: Path, bucket: str, objects: Iterable[tuple[str, bytes]], *, base_url: str) -> int:
    """Write `bucket` holding `objects` in the emulator's on-disk format, as uploads would leave it.

    One metadata write for all objects instead of one per upload. `base_url` is where the emulator
    will listen (object resources carry it in `mediaLink`). Returns the number of objects.
    """
    from gcp_storage_emulator.handlers import buckets
    from gcp_storage_emulator.handlers.objects import _checksums, _make_object_resource
    from gcp_storage_emulator.storage import Storage

    storage = Storage(data_dir=str(data_dir.resolve()))
    buckets.create_bucket(bucket, storage)
    bucket_objects = storage.objects.setdefault(bucket, {})
    for name, content in objects:
        resource = _make_object_resource(base_url, bucket, name, "application/octet-stream", str(len(content)))
        storage._store.write_bytes(storage._object_path(bucket, name), content)
        bucket_objects[name] = _checksums(content, resource)
    storage._write_config_to_file()
    return len(bucket_objects)


def request_counts(log_path: Path, offset: int = 0) -> dict[str, int]:
    """Requests the emulator logged after byte `offset` of its log, by method and kind of route."""
    counts: Counter[str] = Counter()
    with open(log_path, "rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    for match in REQUEST_LINE.finditer(text):
        path = match["path"]
        if path.startswith("/download/"):
            kind = "download"
        elif path.startswith("/upload/"):
            kind = "upload"
        elif path.endswith("/o"):
            kind = "list"
        else:
            kind = "metadata"
        counts[f"{match['method']} {kind}"] += 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--listen-backlog", type=int, default=None, help="listen() backlog (the emulator's: 5)")
    parser.add_argument("--no-metadata-file", action="store_true",
                        help="do not rewrite the metadata file on every write (a benchmark variant)")
    arguments, emulator_arguments = parser.parse_known_args(argv)
    if arguments.listen_backlog:
        import http.server

        http.server.HTTPServer.request_queue_size = arguments.listen_backlog
    if arguments.no_metadata_file:
        from gcp_storage_emulator.storage import Storage

        Storage._write_config_to_file = lambda self: None  # type: ignore[method-assign]
    from gcp_storage_emulator.__main__ import main as emulator_main

    emulator_main(emulator_arguments)


if __name__ == "__main__":
    main()
