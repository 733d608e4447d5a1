"""Planning cost against partition size: seconds and peak RSS of `plan` at 1k, 10k and 100k files.

Each size is planned in a fresh child process (so its peak RSS is its own) by the plan task's own
code: list, read every footer (32 in flight), check the schema, size and cut the shards, check and
write every spec, write the plan document. Every file has the issue's shape, 10 row groups of 10,000
rows (a constant column, so a 100,000-row file is ~4 KiB on disk): 10,000 files are the issue's
1,000,000,000-row partition. Sizes up to --real-up-to are real files on local disk (copies of one
file); larger sizes use synthetic footers (no file I/O for footers; specs are still written).

    PYTHONPATH=plugins:. .venv/bin/python -m bench.plan_scale [--files 1000,10000,100000] [--gcs 1000,10000]

--gcs plans the same partition on a real GCS API on loopback (PyPI's gcp-storage-emulator, as the
tests use it, started by bench.emulator: the bucket seeded on disk, a listen queue for 32 in flight)
and, against the same emulator state, times the two raw costs the plan is made of at the same
concurrency: fetching just those footers' bytes (one ranged read per file) and uploading objects of
the specs' names and sizes (one simple upload each). Each --gcs-variants entry is a fresh emulator:
`stock` serves with its own code throughout; `no-metadata-file` skips its per-write rewrite of all
objects' metadata (bench/emulator.py says why both). The raw fetch and the plan share one emulator;
the raw puts get a second one seeded alike (the same state the plan's spec phase began from). The
emulator's requests are counted per phase.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROW_GROUPS_PER_FILE = 10
ROWS_PER_ROW_GROUP = 10_000
MAX_MAP_LENGTH = 1024  # Airflow's default [core] max_map_length
BUCKET = "nightshard-bench"
DS = "2026-11-20"
GCS_VARIANTS = ("stock", "no-metadata-file")
# tmpfs where there is one: the stock emulator rewrites its whole metadata file (MBs) on every write
EMULATOR_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None

CONFIG = """\
name: plan_scale
owner: bench
schedule: null
start_date: "2026-11-01"
input:
  uri: "{input_uri}"
  id_column: id
model:
  handler: tabular
  version: v1
  options:
    feature_columns: [x]
sharding:
  target_rows: 100000
output:
  uri: "{output_uri}"
"""


def write_template(path: Path) -> None:
    """One file of the issue's shape; constant columns keep it a few KiB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = ROW_GROUPS_PER_FILE * ROWS_PER_ROW_GROUP
    table = pa.table({"id": pa.array([0] * rows, pa.int64()), "x": pa.array([0.5] * rows, pa.float32())})
    pq.write_table(table, path, row_group_size=ROWS_PER_ROW_GROUP)


def make_partition(folder: Path, files: int) -> Path:
    partition = folder / "input" / f"ds={DS}"
    partition.mkdir(parents=True)
    template = folder / "template.parquet"
    write_template(template)
    for index in range(files):
        shutil.copyfile(template, partition / f"part-{index:06d}.parquet")
    (partition / "_SUCCESS").write_text("")
    return partition


def partition_objects(partition: Path) -> Iterator[tuple[str, bytes]]:
    """(object name, bytes) of the local partition as it lies under gs://BUCKET/input/ds=.../."""
    for path in sorted(partition.iterdir()):
        yield f"input/ds={DS}/{path.name}", path.read_bytes()


def child(arguments: argparse.Namespace) -> None:
    """Plan once in this process; print seconds and peak RSS as JSON."""
    sys.path.insert(0, str(REPO_ROOT / "plugins"))
    from nightshard import storage
    from nightshard.config.pipeline_config import load_pipeline_config
    from nightshard.config.run_parameters import RunParameters
    from nightshard.planning import sharding
    from nightshard.planning.plan_document import write_plan
    from nightshard.planning.plan_task import plan_run

    work = Path(arguments.work)
    if arguments.raw_fetch:
        started = time.perf_counter()
        entries = sharding.data_files(arguments.input_uri + f"/ds={DS}")
        tails = storage.map_bounded(lambda e: len(storage.read_tail(e[0], e[1], sharding.FOOTER_TAIL_BYTES)), entries)
        fetched = sum(tails)
        print(json.dumps({"seconds": time.perf_counter() - started, "files": len(entries), "bytes": fetched,
                          "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
        return
    if arguments.raw_spec_puts:
        # the plan's spec objects again, same names and sizes, one bare upload each: what the spec
        # phase costs the store, without the plan's checks or its atomic-write path
        specs = [(uri, size) for uri, size in json.loads(Path(arguments.raw_spec_puts).read_text())]
        storage.exists(specs[0][0])  # the client and its session made outside the clock, as in plan's spec phase
        started = time.perf_counter()

        def put(entry: tuple[str, int]) -> None:
            fs, path = storage.filesystem(entry[0])
            fs.pipe_file(path, b"x" * entry[1])

        list(storage.map_bounded(put, specs))
        print(json.dumps({"seconds": time.perf_counter() - started, "files": len(specs),
                          "bytes": sum(size for _, size in specs),
                          "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
        return
    if arguments.synthetic:
        footer = sharding.read_footer(str(work / "template.parquet"), (work / "template.parquet").stat().st_size)
        partition = arguments.input_uri + f"/ds={DS}"
        names = [(f"{partition}/part-{i:06d}.parquet", footer.size_bytes) for i in range(arguments.synthetic)]
        sharding.data_files = lambda uri: names
        sharding.read_footer = lambda uri, size: sharding.FileFooter(uri, size, footer.row_group_rows,
                                                                     dict(footer.columns))
    config_path = work / "plan_scale.yaml"
    config_path.write_text(CONFIG.format(input_uri=arguments.input_uri, output_uri=arguments.output_uri))
    config = load_pipeline_config(config_path)
    run = RunParameters(ds=DS, model_version="v1", shard_rows=100_000, reprocess="all", dry_run=False)
    started = time.perf_counter()
    document = plan_run(config, run, run_id="bench", max_mapped_tasks=MAX_MAP_LENGTH)
    pointer = write_plan(document)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds,
        "files": len(document["input_files"]),
        "rows": document["input_rows"],
        "shards": len(document["planned_shards"]),
        "shard_rows": document["sharding"]["shard_rows"],
        "phase_seconds": document["plan_seconds"],
        "staging": document["staging"],
        "xcom_bytes": len(json.dumps(pointer)) + len(json.dumps(document["shards"])),
        "plan_document_bytes": storage.file_size(pointer["plan_uri"]),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


def run_child(work: Path, input_uri: str, output_uri: str, *extra: str) -> dict:
    command = [sys.executable, "-m", "bench.plan_scale", "--child", "--work", str(work), "--input-uri", input_uri,
               "--output-uri", output_uri, *extra]
    # this checkout's plugins and worker, whichever checkout the virtualenv was installed from
    python_path = os.pathsep.join(str(REPO_ROOT / folder) for folder in ("plugins", "worker/src", "."))
    environment = {**os.environ, "PYTHONPATH": python_path}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"plan child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(store: str, measured: dict) -> str:
    return (f"{measured['files']:>7} {store:<6} {measured.get('rows', 0):>14} {measured.get('shards', 0):>6} "
            f"{measured['seconds']:>8.2f} {measured['peak_rss_bytes'] / 2**20:>8.0f} "
            f"{measured['seconds'] / measured['files'] * 1e3:>8.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="1000,10000,100000")
    parser.add_argument("--real-up-to", type=int, default=10_000, help="larger sizes use synthetic footers")
    parser.add_argument("--gcs", default="", help="sizes to plan on the GCS emulator too, e.g. 1000,10000")
    parser.add_argument("--gcs-reps", type=int, default=3,
                        help="raw fetch + plan pairs per emulator, interleaved (medians are reported)")
    parser.add_argument("--gcs-variants", default=",".join(GCS_VARIANTS),
                        help=f"emulator variants, each a fresh emulator: {', '.join(GCS_VARIANTS)}")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-fetch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-spec-puts", default="", help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--input-uri", help=argparse.SUPPRESS)
    parser.add_argument("--output-uri", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        child(arguments)
        return
    sizes = [int(value) for value in arguments.files.split(",") if value]
    gcs_sizes = [int(value) for value in arguments.gcs.split(",") if value]
    variants = [value for value in arguments.gcs_variants.split(",") if value]
    unknown = sorted(set(variants) - set(GCS_VARIANTS))
    if unknown:
        parser.error(f"unknown --gcs-variants {', '.join(unknown)}; choose from {', '.join(GCS_VARIANTS)}")
    report = {"max_map_length": MAX_MAP_LENGTH, "runs": []}
    print(f"{'files':>7} {'store':<6} {'rows':>14} {'shards':>6} {'seconds':>8} {'peak MiB':>8} {'ms/file':>8}")
    with tempfile.TemporaryDirectory(prefix="nightshard-bench-plan-") as temp:
        for files in sorted(set(sizes) | set(gcs_sizes)):
            work = Path(temp) / f"files-{files}"
            work.mkdir()
            real = files <= arguments.real_up_to or files in gcs_sizes
            if real:
                make_partition(work, files)
            else:
                write_template(work / "template.parquet")
            if files in sizes:
                extra = () if real else ("--synthetic", str(files))
                measured = run_child(work, str(work / "input"), str(work / "output"), *extra)
                measured["store"] = "local" if real else "synthetic footers"
                report["runs"].append(measured)
                print(line("local" if real else "synth", measured), flush=True)
            if files in gcs_sizes:
                runs, summaries = gcs_runs(work, files, variants, arguments.gcs_reps)
                report["runs"] += runs
                report.setdefault("gcs_summary", []).extend(summaries)
            shutil.rmtree(work, ignore_errors=True)
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")


def counted_child(work: Path, log_path: Path, variant: str, *extra: str, output: str = "output") -> dict:
    """run_child on the emulator's bucket, with the requests the emulator logged meanwhile."""
    from bench import emulator

    offset = log_path.stat().st_size
    measured = run_child(work, f"gs://{BUCKET}/input", f"gs://{BUCKET}/{output}", *extra)
    measured["requests"] = emulator.request_counts(log_path, offset)
    measured["emulator"] = variant
    return measured


@contextlib.contextmanager
def seeded_emulator(work: Path, variant: str, log_path: Path) -> Iterator[dict]:
    """A fresh emulator of `variant` whose bucket holds the partition (seeded on disk, not uploaded)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # the emulator starter the tests use
    from gcs_emulator import free_port, gcs_emulator

    from bench import emulator

    data_dir = Path(tempfile.mkdtemp(prefix="nightshard-bench-gcs-", dir=EMULATOR_DIR))
    port = free_port()
    try:
        started = time.perf_counter()
        seeded = emulator.seed_storage(data_dir, BUCKET, partition_objects(work / "input" / f"ds={DS}"),
                                       base_url=f"http://127.0.0.1:{port}")
        seed_seconds = time.perf_counter() - started
        with gcs_emulator(log_path, data_dir=data_dir, port=port,
                          launcher=emulator.launcher(no_metadata_file=variant == "no-metadata-file")) as url:
            os.environ["STORAGE_EMULATOR_HOST"] = url
            yield {"seeded_objects": seeded, "seed_seconds": round(seed_seconds, 3)}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def gcs_runs(work: Path, files: int, variants: list[str], reps: int) -> tuple[list[dict], list[dict]]:
    """Per variant: `reps` raw footer fetches and plans, interleaved on one emulator, then raw spec
    puts on a second emulator seeded alike; every measurement, and per variant a summary of medians.

    Interleaving spreads the shared machine's drift over both sides of the ratio. Each plan writes
    its own output prefix, so none clears another's staging. The raw puts start from the state the
    first plan's spec phase started from; later plans start with the earlier plans' specs in the
    bucket, which the stock emulator's writes pay for (its per-write cost grows with the objects held).
    """
    from nightshard import storage

    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    runs, summaries = [], []
    for variant in variants:
        log_path = work / f"gcs-emulator-{variant}.log"
        fetches, plans = [], []
        with seeded_emulator(work, variant, log_path) as seeding:
            for rep in range(reps):
                fetches.append(counted_child(work, log_path, variant, "--raw-fetch"))
                plans.append(counted_child(work, log_path, variant, output=f"output-{rep}"))
            # not fsspec's cached listing: the same staging path held another size's specs before
            listed = storage.list_file_sizes(f"{plans[0]['staging']}/_specs")
        specs_path = work / "spec-sizes.json"
        specs_path.write_text(json.dumps(listed))
        with seeded_emulator(work, variant, work / f"gcs-emulator-{variant}-puts.log"):
            puts = counted_child(work, work / f"gcs-emulator-{variant}-puts.log", variant,
                                 "--raw-spec-puts", str(specs_path))
        for rep, (raw, planned) in enumerate(zip(fetches, plans)):
            raw.update(store="gcs raw footer fetch", rep=rep, **seeding)
            planned.update(store="gcs", rep=rep, raw_fetch_seconds=raw["seconds"])
        puts["store"] = "gcs raw spec puts"
        summary = gcs_summary(variant, fetches, plans, puts)
        print(line(f"gcs {variant}", {**plans[0], "seconds": summary["plan_seconds"]}),
              f" medians of {reps}: footers {summary['footer_seconds']:.2f} s (raw fetch "
              f"{summary['raw_fetch_seconds']:.2f} s), specs {summary['spec_seconds']:.2f} s (raw puts "
              f"{puts['seconds']:.2f} s); plan / raw fetch {summary['plan_over_raw_fetch']:.2f}, "
              f"plan / (raw fetch + raw puts) {summary['plan_over_raw_fetch_and_puts']:.2f}", flush=True)
        runs += [*fetches, *plans, puts]
        summaries.append(summary)
    return runs, summaries


def gcs_summary(variant: str, fetches: list[dict], plans: list[dict], puts: dict) -> dict:
    """Medians over the repetitions, and the ratios the issue's goal is read by."""
    raw = statistics.median(run["seconds"] for run in fetches)
    plan = statistics.median(run["seconds"] for run in plans)
    return {
        "emulator": variant,
        "files": plans[0]["files"],
        "shards": plans[0]["shards"],
        "reps": len(plans),
        "raw_fetch_seconds": raw,
        "footer_seconds": statistics.median(run["phase_seconds"]["footers"] for run in plans),
        "spec_seconds": statistics.median(run["phase_seconds"]["specs"] for run in plans),
        "plan_seconds": plan,
        "raw_spec_put_seconds": puts["seconds"],
        "plan_over_raw_fetch": plan / raw,
        "footers_over_raw_fetch": statistics.median(run["phase_seconds"]["footers"] for run in plans) / raw,
        "plan_over_raw_fetch_and_puts": plan / (raw + puts["seconds"]),
        "first_plan_specs_over_raw_puts": plans[0]["phase_seconds"]["specs"] / puts["seconds"],
    }


if __name__ == "__main__":
    main()
