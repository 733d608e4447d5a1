"""Published files take their mode from the umask, as any other writer's do."""

from __future__ import annotations

import os

import pytest

from nightshard_worker import storage


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        target = tmp_path / "out" / "file.json"
        storage.write_bytes_atomic(str(target), b"{}")
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == expected
    assert os.umask(previous) == previous  # reading the umask left it as it was
