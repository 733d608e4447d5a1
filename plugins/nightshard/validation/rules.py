"""Validation rules, pure: what must hold before a run may be published.

Each rule returns `Check`s with numbers in their detail, so the task log reads as a checklist and a
failed run says exactly which shard broke which rule.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nightshard.handoffs import PlanDocument, ShardResultDocument
from nightshard_worker.contract import STATUS_SUCCEEDED

ERROR = "error"
WARNING = "warning"

# Empty histogram bins get this share so PSI stays finite (the usual smoothing in credit-risk PSI).
PSI_EMPTY_BIN_SHARE = 1e-4


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    severity: str = ERROR

    @property
    def blocks_publish(self) -> bool:
        return not self.passed and self.severity == ERROR


@dataclass(frozen=True)
class OutputFooter:
    """What the published file's footer says: rows, columns, nulls per column."""

    rows: int
    columns: dict[str, str]
    null_counts: dict[str, int]


def reconcile(plan: PlanDocument, results: Sequence[ShardResultDocument], max_quarantine_fraction: float) -> list[Check]:
    planned = {ticket["shard_id"]: ticket["rows"] for ticket in plan["planned_shards"]}
    seen = Counter(result["shard_id"] for result in results)
    missing = sorted(set(planned) - set(seen))
    unexpected = sorted(set(seen) - set(planned))
    duplicated = sorted(shard for shard, count in seen.items() if count > 1)
    checks = [
        Check("every planned shard has one result", not (missing or unexpected or duplicated),
              f"planned {len(planned)}, results {len(results)}, missing {missing or 'none'}, "
              f"duplicated {duplicated or 'none'}, unexpected {unexpected or 'none'}"),
    ]
    failed = sorted(r["shard_id"] for r in results if r["status"] != STATUS_SUCCEEDED)
    checks.append(Check("every shard succeeded", not failed, f"not succeeded: {failed or 'none'}"))
    unbalanced = [
        f"{r['shard_id']}: in {r['rows_in']} != out {r['rows_out']} + quarantined {r['rows_quarantined']}"
        for r in results
        if r["rows_in"] != r["rows_out"] + r["rows_quarantined"]
    ]
    checks.append(Check("rows in = rows out + quarantined, per shard", not unbalanced,
                        "; ".join(unbalanced) or f"{len(results)} shards balance"))
    short = [
        f"{r['shard_id']}: planned {planned[r['shard_id']]}, read {r['rows_in']}"
        for r in results
        if r["shard_id"] in planned and r["rows_in"] != planned[r["shard_id"]]
    ]
    checks.append(Check("each shard read the rows it was planned", not short, "; ".join(short) or "all match"))
    rows_in = sum(r["rows_in"] for r in results)
    rows_out = sum(r["rows_out"] for r in results)
    quarantined = sum(r["rows_quarantined"] for r in results)
    checks.append(Check(
        "rows in = rows out + quarantined, in total",
        rows_in == plan["input_rows"] == rows_out + quarantined,
        f"partition {plan['input_rows']}, read {rows_in}, out {rows_out}, quarantined {quarantined}",
    ))
    fraction = quarantined / rows_in if rows_in else 0.0
    checks.append(Check(
        "quarantined share within limit",
        fraction <= max_quarantine_fraction,
        f"{quarantined} of {rows_in} rows ({fraction:.2%}), limit {max_quarantine_fraction:.2%}",
    ))
    return checks


def check_outputs(
    results: Sequence[ShardResultDocument],
    footers: dict[str, OutputFooter],
    *,
    id_column: str,
    input_id_type: str,
) -> list[Check]:
    """The files on disk must say what the results say: rows, schema, no null predictions."""
    mismatched_rows = [
        f"{r['shard_id']}: result says {r['rows_out']}, file holds {footers[r['shard_id']].rows}"
        for r in results
        if footers[r["shard_id"]].rows != r["rows_out"]
    ]
    schemas = {tuple(footer.columns.items()) for footer in footers.values()}
    first = next(iter(footers.values())).columns if footers else {}
    id_ok = bool(first) and next(iter(first)) == id_column and first[id_column] == input_id_type
    with_nulls = [
        f"{shard}: {column} has {count} nulls"
        for shard, footer in sorted(footers.items())
        for column, count in footer.null_counts.items()
        if count
    ]
    return [
        Check("output files hold the rows their results report", not mismatched_rows,
              "; ".join(mismatched_rows) or f"{len(footers)} files match"),
        Check("every shard has the same output schema", len(schemas) <= 1,
              f"{len(schemas)} distinct schemas" if len(schemas) > 1 else f"columns {list(first)}"),
        Check("id column first, with the input's type", id_ok,
              f"{id_column}: input {input_id_type}, output {first.get(id_column, 'missing')}"),
        Check("no null values in the output", not with_nulls, "; ".join(with_nulls) or "none"),
    ]


def merge_histograms(histograms: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    present = [h for h in histograms if h]
    if not present:
        return None
    edges = list(present[0]["edges"])
    counts = [0] * (len(edges) - 1)
    for histogram in present:
        if list(histogram["edges"]) != edges:
            return None  # shards disagree on bins: a mixed deployment, drift cannot be compared
        counts = [total + count for total, count in zip(counts, histogram["counts"])]
    return {"edges": edges, "counts": counts}


def population_stability_index(expected: list[int], actual: list[int]) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bin shares; 0 means the same distribution."""
    if len(expected) != len(actual):
        raise ValueError("histograms have different bins")
    expected_total, actual_total = sum(expected) or 1, sum(actual) or 1
    psi = 0.0
    for e_count, a_count in zip(expected, actual):
        e_share = max(e_count / expected_total, PSI_EMPTY_BIN_SHARE)
        a_share = max(a_count / actual_total, PSI_EMPTY_BIN_SHARE)
        psi += (a_share - e_share) * math.log(a_share / e_share)
    return psi


def drift_check(
    current: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    *,
    previous_label: str,
    warn_above: float,
    fail_above: float | None,
) -> tuple[Check, float | None]:
    if current is None or previous is None or list(current["edges"]) != list(previous["edges"]):
        reason = "no earlier published run to compare with" if previous is None else "histograms not comparable"
        return Check("prediction drift against the previous run", True, f"skipped: {reason}", WARNING), None
    psi = population_stability_index(previous["counts"], current["counts"])
    if fail_above is not None and psi > fail_above:
        return Check("prediction drift against the previous run", False,
                     f"PSI {psi:.4f} vs {previous_label} above the failure limit {fail_above}"), psi
    return Check("prediction drift against the previous run", psi <= warn_above,
                 f"PSI {psi:.4f} vs {previous_label} (warn above {warn_above})", WARNING), psi


def render_checks(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "PASS" if check.passed else ("FAIL" if check.severity == ERROR else "WARN")
        lines.append(f"[{mark}] {check.name}: {check.detail}")
    return "\n".join(lines)
