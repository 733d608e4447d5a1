"""The benchmarks' GCS emulator: a bucket seeded on disk is served over HTTP as if it had been
uploaded, with a listen queue deep enough for 32 requests in flight."""

from __future__ import annotations

import shutil
import subprocess

import fsspec
import pytest
from gcs_emulator import free_port, gcs_emulator

from bench import emulator


def test_a_seeded_bucket_is_listed_read_and_written_over_http(tmp_path, monkeypatch):
    port = free_port()
    objects = [(f"input/ds=2026-11-20/part-{index}.parquet", bytes([index]) * (100 + index)) for index in range(3)]
    assert emulator.seed_storage(tmp_path / "gcs", "seeded", objects, base_url=f"http://127.0.0.1:{port}") == 3

    log_path = tmp_path / "gcs-emulator.log"
    with gcs_emulator(log_path, data_dir=tmp_path / "gcs", port=port,
                      launcher=emulator.launcher(no_metadata_file=True)) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        fs = fsspec.filesystem("gs", token="anon", use_listings_cache=False)
        listed = fs.ls("seeded/input/ds=2026-11-20", detail=True)
        assert [(entry["name"].rsplit("/", 1)[1], entry["size"]) for entry in listed] == [
            ("part-0.parquet", 100), ("part-1.parquet", 101), ("part-2.parquet", 102)]
        assert fs.cat_file("seeded/input/ds=2026-11-20/part-2.parquet", start=100, end=102) == b"\x02\x02"
        fs.pipe_file("seeded/output/new.json", b"{}")
        assert fs.cat_file("seeded/output/new.json") == b"{}"
        if shutil.which("ss"):
            listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
            assert listening.split()[2] == str(emulator.LISTEN_BACKLOG)  # Send-Q of a listener: its backlog

    # GET metadata: the starter's readiness probe (GET /storage/v1/b)
    assert emulator.request_counts(log_path) == {"GET download": 2, "GET list": 1, "GET metadata": 1,
                                                 "POST upload": 1}


@pytest.mark.parametrize("line, kind", [
    ('"GET /download/storage/v1/b/b/o/a%2Fb?alt=media HTTP/1.1" 206 -', "GET download"),
    ('"POST /upload/storage/v1/b/b/o?uploadType=multipart HTTP/1.1" 200 -', "POST upload"),
    ('"GET /storage/v1/b/b/o?prefix=a%2F&delimiter=%2F HTTP/1.1" 200 -', "GET list"),
    ('"GET /storage/v1/b/b/o/a%2Fb HTTP/1.1" 404 -', "GET metadata"),
])
def test_request_counts_sorts_the_log_by_route(tmp_path, line, kind):
    log_path = tmp_path / "emulator.log"
    log_path.write_text(f"starting\n{line}\n")
    assert emulator.request_counts(log_path) == {kind: 1}
