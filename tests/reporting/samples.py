"""Hand-made plan, shard results, validation and cost documents shaped like the real ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nightshard.reporting.cost import load_price_table, run_cost

START = dt.datetime(2026, 11, 23, 0, 5, tzinfo=dt.UTC)
EDGES = [index / 10 for index in range(11)]


def shard_result(index: int, *, rows: int = 2000, seconds: float = 20.0, offset: float = 0.0,
                 quarantined: int = 5, queue_wait: float = 0.0) -> dict[str, Any]:
    started = START + dt.timedelta(seconds=offset)
    return {
        "shard_id": f"{index:05d}-abcd{index:04d}",
        "status": "succeeded",
        "rows_in": rows,
        "rows_out": rows - quarantined,
        "rows_quarantined": quarantined,
        "output_path": f"/tmp/part-{index:05d}.parquet",
        "output_columns": {"customer_id": "int64", "score": "float"},
        "started_at": started.isoformat(),
        "finished_at": (started + dt.timedelta(seconds=seconds)).isoformat(),
        "wall_seconds": seconds,
        "stage_seconds": {"read": seconds * 0.1, "preprocess": seconds * 0.2, "predict": seconds * 0.5,
                          "write": seconds * 0.1},
        "device": "cpu",
        "device_name": "cpu",
        "peak_rss_bytes": 512 * 2**20,
        "queue_wait_seconds": queue_wait,
        "histogram": {"edges": EDGES, "counts": [rows // 10] * 10},
    }


def straggling_run() -> list[dict[str, Any]]:
    """Four shards of 20 s run two at a time, and one of 60 s: the straggler."""
    return [
        shard_result(0, offset=0),
        shard_result(1, offset=0, queue_wait=12.0),
        shard_result(2, offset=20),
        shard_result(3, offset=20, seconds=60.0, queue_wait=30.0),
        shard_result(4, offset=40, rows=1500),
    ]


def plan_for(results: list[dict[str, Any]], ds: str = "2026-11-22") -> dict[str, Any]:
    return {
        "pipeline": "tabular_risk",
        "ds": ds,
        "model_version": "v1",
        "run_id": f"scheduled__{ds}T00:00:00+00:00",
        "input_rows": sum(r["rows_in"] for r in results),
        "planned_shards": [{"shard_id": r["shard_id"], "rows": r["rows_in"]} for r in results],
    }


def cost_for(results: list[dict[str, Any]], accelerator: str = "nvidia-l4") -> dict[str, Any]:
    return run_cost(results, accelerator=accelerator, provisioning="on-demand", accelerators_per_shard=1,
                    table=load_price_table())


def validation_with_drift(counts: list[int], psi: float, previous_ds: str = "2026-11-21") -> dict[str, Any]:
    return {
        "checks": [
            {"name": "every shard succeeded", "passed": True, "detail": "not succeeded: none", "severity": "error"},
            {"name": "prediction drift against the previous run", "passed": psi <= 0.1,
             "detail": f"PSI {psi:.4f} vs ds={previous_ds} (warn above 0.1)", "severity": "warning"},
        ],
        "histogram": {"edges": EDGES, "counts": counts},
        "drift_psi": psi,
        "previous_ds": previous_ds,
    }
