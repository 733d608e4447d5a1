"""The scaling PNG: rows/s against shard size and against torch threads."""

from __future__ import annotations

from pathlib import Path


def scaling_png(path: Path, shard_points: list[dict], thread_points: list[dict], device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a build machine
    import matplotlib.pyplot as plt

    figure, (by_size, by_threads) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = [point["rows"] for point in shard_points]
    by_size.plot(sizes, [p["steady_rows_per_second"] for p in shard_points], "o-", label="steady (after model load)")
    by_size.plot(sizes, [p["end_to_end_rows_per_second"] for p in shard_points], "s--", label="end to end")
    by_size.set_xscale("log")
    by_size.set_xlabel("shard rows (tabular)")
    by_size.set_ylabel("rows/s")
    by_size.set_title(f"worker, tabular, {device}")
    by_size.legend()
    threads = [point["threads"] for point in thread_points]
    by_threads.plot(threads, [p["steady_rows_per_second"] for p in thread_points], "o-", label="worker steady")
    if thread_points and "ceiling_rows_per_second" in thread_points[0]:
        by_threads.plot(threads, [p["ceiling_rows_per_second"] for p in thread_points], "s--", label="ceiling")
    by_threads.set_xticks(threads)
    by_threads.set_xlabel("torch threads")
    by_threads.set_ylabel("rows/s")
    by_threads.set_title(f"text embedding, {device}")
    by_threads.legend()
    for axis in (by_size, by_threads):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
