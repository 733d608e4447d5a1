"""The sections of a validated pipeline config, typed: `config.input.id_column`, not
`config.document["input"]["id_column"]`.

Each class mirrors one object of the config schema (`nightshard.config.schema`), which has
`additionalProperties: false` and fills every default, so a validated section has exactly these keys;
`from_section` still names an unexpected key rather than failing on a keyword argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Self


class _Section:
    @classmethod
    def from_section(cls, section: dict[str, Any]) -> Self:
        known = {item.name for item in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: keys {unknown} are not in the config schema (known: {sorted(known)})")
        return cls(**section)


@dataclass(frozen=True, kw_only=True)
class InputSettings(_Section):
    uri: str
    id_column: str
    check_unique_ids: bool
    marker: str
    wait_timeout_seconds: int
    poke_interval_seconds: float


@dataclass(frozen=True, kw_only=True)
class ModelSettings(_Section):
    handler: str  # a built-in name, or "package.module:Class"
    version: str
    artifact: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ShardingSettings(_Section):
    target_rows: int
    startup_seconds: float


@dataclass(frozen=True, kw_only=True)
class OutputSettings(_Section):
    uri: str


@dataclass(frozen=True, kw_only=True)
class ValidationSettings(_Section):
    max_quarantine_fraction: float
    max_bad_row_fraction_per_shard: float
    drift_psi_warn: float
    drift_psi_fail: float | None


@dataclass(frozen=True, kw_only=True)
class BackendSettings(_Section):
    kind: str  # "local" | "gke"
    infer_pool: str
    max_active_shards: int | None
    # The GKE section stays a mapping here: `GkeSettings.from_config` (backends/gke/settings) types it,
    # so the config package does not own a second copy of the GKE fields.
    gke: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CostSettings(_Section):
    accelerator: str
    provisioning: str
    prices_file: str | None


@dataclass(frozen=True, kw_only=True)
class NotifySettings(_Section):
    outbox: str
    pubsub_topic: str | None
    oncall_topic: str | None
    oncall_slack_conn_id: str | None
    gcp_conn_id: str
