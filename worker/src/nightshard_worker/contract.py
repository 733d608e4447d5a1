"""The contract between the DAG and the worker: a shard spec in, a shard result out.

Defined once, here, with the standard library only: no torch, no pyarrow, no Airflow. The DAG side
(`plugins/nightshard`) builds `ShardSpec`s and reads `ShardResult`s; the worker reads the spec and
writes the result. Both are plain JSON on disk (or in an object store), versioned by
`CONTRACT_VERSION`, so an on-call engineer can read them and replay a shard by hand with
`nightshard-worker run --spec <file>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Bump when a field changes meaning or a required field is added; the worker refuses specs of
# another major version instead of guessing.
CONTRACT_VERSION = 1

# Worker exit codes, documented in README: Airflow and Kubernetes see only the code, so each
# cause that needs a different next step gets its own.
EXIT_OK = 0
EXIT_FAILED = 1  # unexpected error: read the traceback in the log
EXIT_BAD_SPEC = 2  # the spec or the input does not match what the model needs: fix input or config
EXIT_TOO_MANY_BAD_ROWS = 3  # quarantine share above the threshold: inspect the quarantine file
EXIT_PREEMPTED = 75  # SIGTERM honoured (EX_TEMPFAIL): progress committed, a retry resumes

STATUS_SUCCEEDED = "succeeded"
STATUS_PREEMPTED = "preempted"
STATUS_FAILED = "failed"


class ContractError(ValueError):
    """A spec or result document that does not follow this contract."""


@dataclass(frozen=True)
class InputSlice:
    """Row groups of one Parquet file that belong to a shard."""

    path: str
    row_groups: tuple[int, ...]
    rows: int


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Which handler scores the rows, with which artifact and options."""

    handler: str  # "tabular", "text_embedding", "image_classification" or "package.module:Class"
    version: str
    artifact: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """How the worker runs: device, precision, batching, commit and reporting cadence."""

    device: str = "auto"  # "auto" picks cuda when present, else cpu
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on the device)
    batch_size: int = 256  # rows per forward pass, the memory cap for every handler
    max_batch_tokens: int = 16384  # text only: padded tokens per forward pass
    compile: bool = False  # torch.compile the model once per process
    preprocess_workers: int = 2
    # Checkpoint cadence: a commit covers at least this many row groups (rounded up to whole steps:
    # row groups grouped to batch_size x the handler's step_batches rows) and at least this many
    # seconds of scoring. A retry after a hard kill redoes at most the larger of the two.
    commit_every_row_groups: int = 1
    commit_interval_seconds: float = 10.0
    max_bad_row_fraction: float = 0.5  # above it the shard fails instead of publishing
    progress_interval_seconds: float = 10.0
    metrics_port: int | None = None  # serve Prometheus metrics while running
    pushgateway_url: str | None = None  # push final metrics here when set
    threads: int | None = None  # torch intra-op threads; None keeps torch's default


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    """Everything one worker needs to score one shard, and where to put what it made."""

    pipeline: str
    ds: str
    run_id: str
    shard_id: str
    shard_index: int
    shard_count: int
    inputs: tuple[InputSlice, ...]
    input_rows: int
    id_column: str
    model: ModelSpec
    runtime: RuntimeSpec
    output_path: str  # the shard's Parquet file, written atomically
    quarantine_path: str  # bad rows with the reason, written atomically
    result_path: str  # where the worker writes its ShardResult JSON
    checkpoint_dir: str  # committed chunks and the progress record live here
    # The shard's ids by hash bucket, for the run's uniqueness check (nightshard_worker.id_index);
    # 0 buckets: no index. Not in the fingerprint: the index describes the input, not the output.
    id_index_dir: str = ""
    id_index_buckets: int = 0
    contract_version: int = CONTRACT_VERSION

    def fingerprint(self) -> str:
        """Hash of everything that decides the output; equal fingerprints give equal rows.

        The run id and the reporting settings are left out on purpose: a rerun of the same
        shard by another DAG run may reuse committed work.
        """
        decisive = {
            "pipeline": self.pipeline,
            "ds": self.ds,
            "inputs": [dataclasses.asdict(s) for s in self.inputs],
            "id_column": self.id_column,
            "model": dataclasses.asdict(self.model),
            "contract_version": self.contract_version,
        }
        return _sha256_of(decisive)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShardSpec:
        raw = _load_document(text, "shard spec")
        _check_version(raw, "shard spec")
        try:
            inputs = tuple(
                InputSlice(path=s["path"], row_groups=tuple(s["row_groups"]), rows=int(s["rows"]))
                for s in raw.pop("inputs")
            )
            model = ModelSpec(**raw.pop("model"))
            runtime = RuntimeSpec(**raw.pop("runtime"))
            return cls(inputs=inputs, model=model, runtime=runtime, **raw)
        except (KeyError, TypeError) as error:
            raise ContractError(f"shard spec is missing or has an unknown field: {error}") from error


@dataclass(frozen=True)
class PredictionHistogram:
    """Distribution of the handler's drift signal, so validation can compare runs cheaply."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(kw_only=True)
class ShardResult:
    """What a worker did with one shard; rows_in == rows_out + rows_quarantined when succeeded."""

    shard_id: str
    status: str
    spec_fingerprint: str
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    output_path: str = ""
    output_bytes: int = 0
    output_sha256: str = ""
    quarantine_path: str = ""
    output_columns: dict[str, str] = field(default_factory=dict)  # name -> Arrow type string
    started_at: str = ""
    finished_at: str = ""
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # read, preprocess, predict, write
    device: str = ""
    device_name: str = ""
    peak_rss_bytes: int = 0
    peak_device_memory_bytes: int = 0
    resumed_from_rows: int = 0  # rows already committed by an earlier attempt
    rows_truncated: int | None = None  # output rows the model saw only in part; None: the handler never cuts
    input_tokens: int = 0  # llm handler: prompt tokens of the rows in the output (0 for other handlers)
    output_tokens: int = 0  # llm handler: tokens generated for them
    attempts: int = 1
    # Seconds the earlier attempts of this shard ran before they were killed, preempted or failed (each as
    # of its last commit); with wall_seconds, what the shard's accelerator time was in all.
    earlier_attempts_seconds: float = 0.0
    histogram: PredictionHistogram | None = None
    error: str = ""
    contract_version: int = CONTRACT_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.to_json())
        return document

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ShardResult:
        raw = dict(raw)
        _check_version(raw, "shard result")
        histogram = raw.pop("histogram", None)
        try:
            result = cls(**raw)
        except TypeError as error:
            raise ContractError(f"shard result has an unknown field: {error}") from error
        if histogram is not None:
            result.histogram = PredictionHistogram(
                edges=tuple(histogram["edges"]), counts=tuple(histogram["counts"])
            )
        return result

    @classmethod
    def from_json(cls, text: str) -> ShardResult:
        return cls.from_dict(_load_document(text, "shard result"))

    def completes(self, spec: ShardSpec) -> bool:
        """True when this result says `spec` was scored to the end: it succeeded, on the same inputs,
        model and contract (the fingerprint). Whether its output file still exists is the caller's I/O."""
        return self.status == STATUS_SUCCEEDED and self.spec_fingerprint == spec.fingerprint()


def shard_file_stem(shard_id: str) -> str:
    """The one naming rule for a shard's files: part-<shard>."""
    return f"part-{shard_id}"


def _sha256_of(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _load_document(text: str, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ContractError(f"{what} must be a JSON object, got {type(raw).__name__}")
    return raw


def _check_version(raw: dict[str, Any], what: str) -> None:
    version = raw.get("contract_version")
    if version != CONTRACT_VERSION:
        raise ContractError(
            f"{what} has contract_version {version!r}, this worker speaks {CONTRACT_VERSION}: "
            "deploy a worker image and DAG code from the same release"
        )
