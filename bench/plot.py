"""The scaling PNG: rows/s against shard size and against torch threads."""

from __future__ import annotations

from pathlib import Path


def scaling_png(path: Path, shard_points: list[dict], thread_points: list[dict], machine: dict) -> None:
    """`machine` is the run's record (bench.run): its date and hardware head the figure."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a build machine
    import matplotlib.pyplot as plt

    device = machine["device"]
    figure, (by_size, by_threads) = plt.subplots(1, 2, figsize=(10, 4.4))
    figure.suptitle(caption(machine), fontsize=9)
    sizes = [point["rows"] for point in shard_points]
    by_size.plot(sizes, [p["steady_rows_per_second"] for p in shard_points], "o-", label="steady (after model load)")
    by_size.plot(sizes, [p["end_to_end_rows_per_second"] for p in shard_points], "s--", label="end to end")
    by_size.set_xscale("log")
    by_size.set_xlabel(f"shard rows (tabular, {machine['torch_threads']} torch threads)")
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


def caption(machine: dict) -> str:
    """When and where the points were measured, as the README's tables say it."""
    where = machine["device"] if machine["device_name"] == machine["device"] else \
        f"{machine['device']} ({machine['device_name']})"
    return f"{machine['date'][:10]}, {where}, nproc {machine['nproc']}, torch {machine['torch']}, {machine['precision']}"
