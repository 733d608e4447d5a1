"""`nightshard-worker run --spec <path-or-uri>`: score one shard. `describe` shows what it would do."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from nightshard_worker import storage
from nightshard_worker.checkpoint import PROGRESS_RECORD
from nightshard_worker.contract import EXIT_BAD_SPEC, EXIT_FAILED, STATUS_FAILED, ContractError, ShardResult
from nightshard_worker.input_requirements import RequirementError, required_columns
from nightshard_worker.shard_lifecycle import load_spec, run_shard


def main(argv: list[str] | None = None) -> int:
    # The worker never reaches a model hub: weights ship with the image or a mounted volume.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if os.environ.get("TMPDIR"):
        # On a read-only root filesystem TMPDIR points into the scratch volume, which starts empty.
        os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")
    arguments = _parser().parse_args(argv)
    return arguments.command(arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nightshard-worker", description=__doc__)
    commands = parser.add_subparsers(required=True)
    run = commands.add_parser("run", help="score one shard and write its ShardResult")
    run.add_argument("--spec", required=True, help="shard spec JSON: a local path or an fsspec URI (gs://...)")
    run.set_defaults(command=_run)
    describe = commands.add_parser("describe", help="print what the spec asks for and the checkpoint state")
    describe.add_argument("--spec", required=True, help="shard spec JSON: a local path or an fsspec URI")
    describe.set_defaults(command=_describe)
    return parser


def _run(arguments: argparse.Namespace) -> int:
    log = logging.getLogger("nightshard_worker")
    try:
        spec = load_spec(arguments.spec)
    except FileNotFoundError:
        log.error("spec %s does not exist: check the spec URI the DAG passed", arguments.spec)
        return EXIT_BAD_SPEC
    except ContractError as error:
        log.error("spec %s is not a valid shard spec: %s", arguments.spec, error)
        return EXIT_BAD_SPEC
    try:
        return run_shard(spec)
    except Exception as error:  # even the result could not be written: say so, plainly
        log.exception("shard %s: could not finish or record its result: %s", spec.shard_id, error)
        return EXIT_FAILED


def _describe(arguments: argparse.Namespace) -> int:
    try:
        spec = load_spec(arguments.spec)
    except (FileNotFoundError, ContractError) as error:
        print(f"spec {arguments.spec} cannot be read: {error}")
        return EXIT_BAD_SPEC
    try:
        columns = required_columns(spec.model)
    except RequirementError as error:
        columns = {"?": str(error)}
    record_uri = storage.join(spec.checkpoint_dir, PROGRESS_RECORD)
    checkpoint = json.loads(storage.read_bytes(record_uri)) if storage.exists(record_uri) else None
    result = (ShardResult.from_json(storage.read_bytes(spec.result_path).decode())
              if storage.exists(spec.result_path) else None)
    print(json.dumps({
        "shard": spec.shard_id,
        "fingerprint": spec.fingerprint(),
        "handler": spec.model.handler,
        "required_columns": {spec.id_column: "id", **columns},
        "inputs": [{"path": s.path, "row_groups": list(s.row_groups), "rows": s.rows} for s in spec.inputs],
        "input_rows": spec.input_rows,
        "checkpoint": None if checkpoint is None else {
            key: checkpoint[key] for key in ("units_committed", "rows_out", "rows_quarantined", "attempts")},
        "result_status": None if result is None else result.status,
        "result_is_failure": bool(result and result.status == STATUS_FAILED),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
