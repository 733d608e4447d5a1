"""The issue's targets as pure checks over median results: each a ratio measured in one run."""

from __future__ import annotations

from dataclasses import dataclass

# The issue sets the text targets for a 20k-row shard. A smaller one (the CPU default, sized for
# the 10-minute budget) is mostly one step and one process start-up: its verdicts say so.
TEXT_TARGET_ROWS = 20_000


@dataclass(frozen=True)
class Target:
    workload: str
    name: str
    ratio: float | None  # None: a side was not measured (the reason is in `note`)
    threshold: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "NOT MEASURED"
        met = self.ratio >= self.threshold if self.higher_is_better else self.ratio <= self.threshold
        return "PASS" if met else "FAIL"

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        shown = "n/a" if self.ratio is None else f"{self.ratio:.2f}"
        note = f"  ({self.note})" if self.note else ""
        return f"{self.verdict:<12} {self.workload:<12} {self.name:<44} {shown:>6} (target {sign} {self.threshold}){note}"

    def to_dict(self) -> dict:
        return {"name": self.name, "ratio": None if self.ratio is None else round(self.ratio, 3),
                "threshold": self.threshold, "higher_is_better": self.higher_is_better,
                "verdict": self.verdict, "note": self.note}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def throughput_targets(workload: str, medians: dict[str, dict],
                       not_measured: dict[str, str] | None = None, rows: int | None = None) -> list[Target]:
    """medians: variant -> {"steady": rows/s, "end_to_end": rows/s}; missing variants give n/a.

    not_measured: variant -> why it has no numbers, carried into the note of the targets it leaves n/a.
    rows: the shard's rows; text verdicts on fewer than TEXT_TARGET_ROWS say so in their note.
    """
    reasons = not_measured or {}
    size_note = (f"on {rows} rows; the target is for {TEXT_TARGET_ROWS}: --text-rows {TEXT_TARGET_ROWS}"
                 if workload == "text" and rows is not None and rows < TEXT_TARGET_ROWS else "")

    def rate(variant: str, kind: str) -> float | None:
        return medians.get(variant, {}).get(kind)

    def note(*variants: str) -> str:
        missing = [f"{variant}: {reasons[variant]}" for variant in variants if variant in reasons]
        return "; ".join(missing or ([size_note] if size_note else []))

    worker_vs_ceiling = ratio(rate("worker", "steady"), rate("ceiling", "steady"))
    if workload == "text":
        return [
            Target(workload, "worker / ceiling (steady rows/s)", worker_vs_ceiling, 0.90,
                   note=note("worker", "ceiling")),
            Target(workload, "worker / naive (end-to-end rows/s)",
                   ratio(rate("worker", "end_to_end"), rate("naive", "end_to_end")), 2.5,
                   note=note("worker", "naive")),
            Target(workload, "worker / Ray Data (end-to-end rows/s)",
                   ratio(rate("worker", "end_to_end"), rate("ray", "end_to_end")), 1.5,
                   note=note("worker", "ray")),
        ]
    if workload in ("tabular", "tabular_wide"):
        return [Target(workload, "worker / ceiling (steady rows/s)", worker_vs_ceiling, 0.80,
                       note=note("worker", "ceiling"))]
    return []


def memory_target(peak_large: int | None, peak_small: int | None, rows_large: int, rows_small: int) -> Target:
    return Target("tabular", f"worker peak RSS {rows_large} / {rows_small} rows",
                  ratio(peak_large, peak_small), 1.2, higher_is_better=False)


def gpu_busy_target(workload: str, busy_percent: float | None, on_gpu: bool) -> Target:
    if not on_gpu:
        return Target(workload, "worker GPU busy % / 100", None, 0.90, note="skipped: no CUDA device (cpu run)")
    value = None if busy_percent is None else busy_percent / 100
    return Target(workload, "worker GPU busy % / 100", value, 0.90,
                  note="" if value is not None else "no NVML or nvidia-smi to sample")
