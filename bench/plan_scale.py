"""Planning cost against partition size: seconds and peak RSS of `plan` at 1k, 10k and 100k files.

Each size is planned in a fresh child process (so its peak RSS is its own) by the plan task's own
code: list, read every footer (32 in flight), check the schema, size and cut the shards, check and
write every spec, write the plan document. Every file has the issue's shape, 10 row groups of 10,000
rows (a constant column, so a 100,000-row file is ~4 KiB on disk): 10,000 files are the issue's
1,000,000,000-row partition. Sizes up to --real-up-to are real files on local disk (copies of one
file); larger sizes use synthetic footers (no file I/O for footers; specs are still written).

    PYTHONPATH=plugins:. .venv/bin/python -m bench.plan_scale [--files 1000,10000,100000] [--gcs 1000,10000]

--gcs plans the same partition on a real GCS API on loopback (PyPI's gcp-storage-emulator, as the
tests use it) and, in the same run, times fetching just those footers' bytes at the same
concurrency (one ranged read per file), so the plan's overhead over raw I/O shows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROW_GROUPS_PER_FILE = 10
ROWS_PER_ROW_GROUP = 10_000
MAX_MAP_LENGTH = 1024  # Airflow's default [core] max_map_length
BUCKET = "nightshard-bench"

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
    partition = folder / "input" / "ds=2026-11-20"
    partition.mkdir(parents=True)
    template = folder / "template.parquet"
    write_template(template)
    for index in range(files):
        shutil.copyfile(template, partition / f"part-{index:06d}.parquet")
    (partition / "_SUCCESS").write_text("")
    return partition


def upload_partition(partition: Path, files: int) -> None:
    """The same files under gs://BUCKET/input/ds=.../, uploaded 32 at a time."""
    import fsspec

    from nightshard import storage

    gcs = fsspec.filesystem("gs", token="anon")
    data = (partition.parent.parent / "template.parquet").read_bytes()
    target = f"{BUCKET}/input/ds=2026-11-20"

    def put(index: int) -> None:
        gcs.pipe_file(f"{target}/part-{index:06d}.parquet", data)

    list(storage.map_bounded(put, range(files)))
    gcs.pipe_file(f"{target}/_SUCCESS", b"")


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
        entries = sharding.data_files(arguments.input_uri + "/ds=2026-11-20")
        tails = storage.map_bounded(lambda e: len(storage.read_tail(e[0], e[1], sharding.FOOTER_TAIL_BYTES)), entries)
        fetched = sum(tails)
        print(json.dumps({"seconds": time.perf_counter() - started, "files": len(entries), "bytes": fetched,
                          "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
        return
    if arguments.synthetic:
        footer = sharding.read_footer(str(work / "template.parquet"), (work / "template.parquet").stat().st_size)
        partition = arguments.input_uri + "/ds=2026-11-20"
        names = [(f"{partition}/part-{i:06d}.parquet", footer.size_bytes) for i in range(arguments.synthetic)]
        sharding.data_files = lambda uri: names
        sharding.read_footer = lambda uri, size: sharding.FileFooter(uri, size, footer.row_group_rows,
                                                                     dict(footer.columns))
    config_path = work / "plan_scale.yaml"
    config_path.write_text(CONFIG.format(input_uri=arguments.input_uri, output_uri=arguments.output_uri))
    config = load_pipeline_config(config_path)
    run = RunParameters(ds="2026-11-20", model_version="v1", shard_rows=100_000, reprocess="all", dry_run=False)
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
        "xcom_bytes": len(json.dumps(pointer)) + len(json.dumps(document["shards"])),
        "plan_document_bytes": storage.file_size(pointer["plan_uri"]),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


def run_child(work: Path, input_uri: str, output_uri: str, *extra: str) -> dict:
    command = [sys.executable, "-m", "bench.plan_scale", "--child", "--work", str(work), "--input-uri", input_uri,
               "--output-uri", output_uri, *extra]
    environment = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'plugins'}:{REPO_ROOT}"}
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
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-fetch", action="store_true", help=argparse.SUPPRESS)
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
                report["runs"] += gcs_runs(work, files)
            shutil.rmtree(work, ignore_errors=True)
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")


def gcs_runs(work: Path, files: int) -> list[dict]:
    sys.path.insert(0, str(REPO_ROOT / "tests"))  # the emulator starter the tests use
    from gcs_emulator import gcs_emulator

    runs = []
    with gcs_emulator(work / "gcs-emulator.log") as url:
        os.environ["STORAGE_EMULATOR_HOST"] = url
        os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
        import fsspec

        fsspec.filesystem("gs", token="anon").mkdir(BUCKET)
        upload_partition(work / "input" / "ds=2026-11-20", files)
        uri = f"gs://{BUCKET}/input"
        raw = run_child(work, uri, f"gs://{BUCKET}/output", "--raw-fetch")
        planned = run_child(work, uri, f"gs://{BUCKET}/output")
        raw["store"], planned["store"] = "gcs raw footer fetch", "gcs"
        planned["raw_fetch_seconds"] = raw["seconds"]
        print(line("gcs", planned), f" raw footer fetch {raw['seconds']:.2f} s, plan / raw "
              f"{planned['seconds'] / raw['seconds']:.2f}", flush=True)
        runs += [raw, planned]
    return runs


if __name__ == "__main__":
    main()
