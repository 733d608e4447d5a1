"""Cost, pure: accelerator-hours from the workers' own timings times the price table.

Queue wait (Kueue / DWS holding a pod) is reported apart and never billed: no node runs then.
For language models, tokens are the unit: the cost is split between input and output tokens with
an output token weighing `OUTPUT_TOKEN_WEIGHT` input tokens, giving dollars per million of each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightshard.config.pipeline_config import PipelineConfig, expand_environment
from nightshard.failures import PermanentError
from nightshard.handoffs import ShardResultDocument

SHIPPED_PRICES = Path(__file__).with_name("prices.json")
# A generated token costs a forward step of its own, a prompt token shares one pass with its whole
# prompt; 4x is the ratio most hosted LLM price lists use for output against input tokens.
OUTPUT_TOKEN_WEIGHT = 4.0


class PriceError(PermanentError):
    """The price table has no entry for an accelerator or provisioning mode."""


def load_price_table(override: str | None = None) -> dict[str, Any]:
    return json.loads(Path(override or SHIPPED_PRICES).read_text())


@dataclass(frozen=True)
class Pricing:
    """How a pipeline's run is priced: the price table, the device and provisioning, accelerators per shard."""

    table: dict[str, Any]
    accelerator: str
    provisioning: str
    accelerators_per_shard: int

    @property
    def price_per_accelerator_hour(self) -> float:
        return hourly_price(self.table, self.accelerator, self.provisioning)

    @property
    def currency(self) -> str:
        return str(self.table.get("currency", "USD"))


def pricing_for(config: PipelineConfig) -> Pricing:
    """The pricing the cost step bills and plan's estimate uses: cost.* settings, and a GKE pod's GPUs."""
    settings, backend = config.cost, config.backend
    accelerators = backend.gke.get("gpus_per_pod", 1) if backend.kind == "gke" else 1
    return Pricing(
        table=load_price_table(expand_environment(settings.prices_file) if settings.prices_file else None),
        accelerator=settings.accelerator,
        provisioning=settings.provisioning,
        accelerators_per_shard=accelerators,
    )


def hourly_price(table: dict[str, Any], accelerator: str, provisioning: str) -> float:
    try:
        return float(table["prices"][accelerator][provisioning])
    except KeyError:
        known = sorted(table["prices"])
        raise PriceError(
            f"no price for accelerator {accelerator!r} with provisioning {provisioning!r}; the table knows "
            f"{known}. Set cost.accelerator / cost.provisioning, or add it to cost.prices_file"
        ) from None


def run_cost(
    results: Sequence[ShardResultDocument],
    *,
    accelerator: str,
    provisioning: str,
    accelerators_per_shard: int,
    table: dict[str, Any],
) -> dict[str, Any]:
    """Per-shard and total cost; dollars per million records uses rows scored and quarantined."""
    price = hourly_price(table, accelerator, provisioning)
    shards: list[dict[str, Any]] = []
    for result in results:
        # Every attempt ran on an accelerator: a killed or preempted one is paid for too.
        seconds = result["wall_seconds"] + result.get("earlier_attempts_seconds", 0.0)
        hours = seconds * accelerators_per_shard / 3600
        shards.append({
            "shard_id": result["shard_id"],
            "rows": result["rows_in"],
            "attempts": result.get("attempts", 1),
            "billed_seconds": seconds,
            "accelerator_hours": hours,
            "queue_wait_seconds": result.get("queue_wait_seconds", 0.0),
            "cost": hours * price,
        })
    hours = sum(shard["accelerator_hours"] for shard in shards)
    rows = sum(shard["rows"] for shard in shards)
    total = hours * price
    return {**_token_costs(results, total, hours / accelerators_per_shard * 3600 if accelerators_per_shard else 0.0),
        "accelerator": accelerator,
        "provisioning": provisioning,
        "price_per_accelerator_hour": price,
        "currency": table.get("currency", "USD"),
        "price_source": table.get("source", ""),
        "price_recorded": table.get("recorded", ""),
        "accelerator_hours": hours,
        "queue_wait_seconds": sum(shard["queue_wait_seconds"] for shard in shards),
        "attempts": sum(shard["attempts"] for shard in shards),
        "rows": rows,
        "total_cost": total,
        "cost_per_million_rows": total / rows * 1e6 if rows else 0.0,
        "shards": shards,
    }


def _token_costs(results: Sequence[ShardResultDocument], total: float, wall_seconds: float) -> dict[str, Any]:
    """Tokens, tokens/s and dollars per million input and output tokens; empty for non-LLM runs."""
    input_tokens = sum(int(result.get("input_tokens") or 0) for result in results)
    output_tokens = sum(int(result.get("output_tokens") or 0) for result in results)
    if not input_tokens and not output_tokens:
        return {}
    per_weighted = total / (input_tokens + OUTPUT_TOKEN_WEIGHT * output_tokens)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens_per_second": (input_tokens + output_tokens) / wall_seconds if wall_seconds else 0.0,
        "output_token_weight": OUTPUT_TOKEN_WEIGHT,
        "cost_per_million_input_tokens": per_weighted * 1e6,
        "cost_per_million_output_tokens": per_weighted * OUTPUT_TOKEN_WEIGHT * 1e6 if output_tokens else 0.0,
    }
