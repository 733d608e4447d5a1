"""The GPUs nightshard may ask GKE for: one table of real node-label values, used everywhere.

`cloud.google.com/gke-accelerator` is the label GKE puts on every GPU node; a pod or ResourceFlavor
that selects any other value never finds a node. The config schema, the chart's values.schema.json
(a test keeps its enum equal to this table), the price table and docs/gke.md all come from here.
Source: GKE "About GPUs in GKE" and Compute Engine "GPU machine types" (checked 2026-12).
Standard library only: the config loader imports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    """One GKE GPU type: its node label, memory per GPU, and the machine types that carry it."""

    label: str
    gpu_memory_gib: int
    machine_family: str
    # GPUs per node of the machine types GKE offers for it (a2-highgpu-1g ... a2-megagpu-16g).
    gpus_per_node: tuple[int, ...]


ACCELERATOR_TABLE: tuple[Accelerator, ...] = (
    Accelerator("nvidia-tesla-t4", 16, "n1", (1, 2, 4)),
    Accelerator("nvidia-l4", 24, "g2", (1, 2, 4, 8)),
    Accelerator("nvidia-tesla-a100", 40, "a2-highgpu / a2-megagpu", (1, 2, 4, 8, 16)),
    Accelerator("nvidia-a100-80gb", 80, "a2-ultragpu", (1, 2, 4, 8)),
    Accelerator("nvidia-h100-80gb", 80, "a3-highgpu", (1, 2, 4, 8)),
    Accelerator("nvidia-h100-mega-80gb", 80, "a3-megagpu", (8,)),
    Accelerator("nvidia-h200-141gb", 141, "a3-ultragpu", (8,)),
    Accelerator("nvidia-b200", 180, "a4-highgpu", (8,)),
)

ACCELERATORS: tuple[str, ...] = tuple(a.label for a in ACCELERATOR_TABLE)

# Names people write that GKE does not use, and the label they mean.
WRONG_LABELS = {
    "nvidia-a100-40gb": "nvidia-tesla-a100",
    "nvidia-a100": "nvidia-tesla-a100",
    "nvidia-t4": "nvidia-tesla-t4",
    "nvidia-h100": "nvidia-h100-80gb",
    "nvidia-h200": "nvidia-h200-141gb",
}


def accelerator(label: str) -> Accelerator:
    """The table row of a GKE accelerator label; an unknown label raises with the right one."""
    for row in ACCELERATOR_TABLE:
        if row.label == label:
            return row
    raise ValueError(unknown_accelerator_message(label))


def unknown_accelerator_message(label: str) -> str:
    """What is wrong with an accelerator label, and which one to use instead."""
    hint = WRONG_LABELS.get(label)
    if hint:
        return f"accelerator {label!r} is not a GKE node label: use {hint!r} (GKE labels its nodes with it)"
    return f"accelerator {label!r} is not a GKE node label; GKE's GPU labels are: {', '.join(ACCELERATORS)}"


def markdown_table() -> str:
    """The table as docs/gke.md shows it."""
    lines = ["| `cloud.google.com/gke-accelerator` | GPU memory | machine family | GPUs per node |", "|---|---|---|---|"]
    for row in ACCELERATOR_TABLE:
        per_node = ", ".join(str(n) for n in row.gpus_per_node)
        lines.append(f"| `{row.label}` | {row.gpu_memory_gib} GiB | {row.machine_family} | {per_node} |")
    return "\n".join(lines)
