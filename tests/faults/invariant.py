"""The suite's one invariant, asserted after every fault:

- a published partition holds every input id exactly once, in the output or in quarantine with a reason,
  and its manifest lists exactly the files on disk (bytes and sha256);
- an unpublished partition has no `_SUCCESS` (and no partition folder at all);
- an earlier published partition (other dates, other model versions) is untouched.

Each check returns the counts it asserted, and `TALLY` keeps them so the session summary prints the
figures the README table quotes (rows lost, rows duplicated) from the runs themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


@dataclass(frozen=True)
class Tally:
    case: str
    input_rows: int
    output_rows: int
    quarantined_rows: int
    rows_lost: int
    rows_duplicated: int
    rows_unexpected: int


TALLY: list[Tally] = []


def input_ids(input_partition: Path, id_column: str) -> list[Any]:
    return _ids(sorted(input_partition.glob("*.parquet")), id_column)


def assert_published_exactly_once(case: str, partition: Path, expected_ids: list[Any], id_column: str) -> Tally:
    """Every input id once, in output or quarantine (with a reason); the manifest matches the files."""
    assert (partition / "_SUCCESS").is_file(), f"{partition} has no _SUCCESS"
    manifest = json.loads((partition / "_manifest.json").read_text())
    listed = {entry["path"]: entry for entry in manifest["files"] + manifest["quarantine_files"]}
    on_disk = {str(p.relative_to(partition)) for p in partition.rglob("*.parquet")}
    assert set(listed) == on_disk, f"manifest lists {sorted(listed)}, disk holds {sorted(on_disk)}"
    for path, entry in listed.items():
        data = (partition / path).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), path

    outputs = sorted(partition.glob("part-*.parquet"))
    quarantined = sorted((partition / "_quarantine").glob("*.parquet"))
    for path in quarantined:
        reasons = pq.read_table(path, columns=["reason"]).column("reason").to_pylist()
        assert all(reason and reason.strip() for reason in reasons), f"{path}: a quarantined row has no reason"
    output_ids, quarantine_ids = _ids(outputs, id_column), _ids(quarantined, id_column)
    seen = output_ids + quarantine_ids
    expected = set(expected_ids)
    assert len(expected) == len(expected_ids), "the test's input holds duplicated ids"
    tally = Tally(
        case=case,
        input_rows=len(expected_ids),
        output_rows=len(output_ids),
        quarantined_rows=len(quarantine_ids),
        rows_lost=len(expected - set(seen)),
        rows_duplicated=len(seen) - len(set(seen)),
        rows_unexpected=len(set(seen) - expected),
    )
    TALLY.append(tally)
    assert (tally.rows_lost, tally.rows_duplicated, tally.rows_unexpected) == (0, 0, 0), tally
    assert manifest["rows"] == {"input": tally.input_rows, "output": tally.output_rows,
                                "quarantined": tally.quarantined_rows}, manifest["rows"]
    return tally


def assert_unpublished(case: str, partition: Path, input_rows: int = 0) -> Tally:
    """Nothing visible to readers: no _SUCCESS, no partition folder, no half-built swap folder."""
    assert not (partition / "_SUCCESS").exists(), f"{partition} has a _SUCCESS"
    assert not partition.exists(), f"{partition} exists: {sorted(p.name for p in partition.iterdir())}"
    table = partition.parent
    if table.exists():
        half_built = [p.name for p in table.iterdir() if p.name.startswith(("_publishing-", "_replaced-"))]
        assert not half_built, half_built
    tally = Tally(case=case, input_rows=input_rows, output_rows=0, quarantined_rows=0, rows_lost=0,
                  rows_duplicated=0, rows_unexpected=0)
    TALLY.append(tally)
    return tally


def snapshot(partition: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under a partition: what "untouched" is compared against."""
    return {str(p.relative_to(partition)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(partition.rglob("*")) if p.is_file()}


def assert_untouched(partition: Path, before: dict[str, tuple[str, int]]) -> None:
    assert before, f"empty snapshot of {partition}"
    assert snapshot(partition) == before, f"{partition} changed"


def summary_lines() -> list[str]:
    return [json.dumps(asdict(tally)) for tally in TALLY]


def _ids(files: list[Path], id_column: str) -> list[Any]:
    ids: list[Any] = []
    for path in files:
        ids.extend(pq.read_table(path, columns=[id_column]).column(id_column).to_pylist())
    return ids
