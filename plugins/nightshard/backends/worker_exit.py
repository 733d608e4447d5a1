"""What a shard's worker leaves behind: its exit code's cause and next step for on-call, and its result file."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from nightshard import storage
from nightshard.failures import ExplainedError
from nightshard.handoffs import ShardResultDocument
from nightshard_worker.contract import (
    EXIT_BAD_SPEC,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PREEMPTED,
    EXIT_TOO_MANY_BAD_ROWS,
)


class ShardFailed(ExplainedError, AirflowException):
    """A shard's worker (process or pod) failed, or never started; cause (naming the shard) and next step as fields."""


class ShardRejected(ShardFailed, AirflowFailException):
    """A shard failed in a way a retry reproduces (exit 2 bad spec, 3 too many bad rows): no retry."""


_EXPLANATIONS = {
    EXIT_OK: ("succeeded", "nothing to do"),
    EXIT_FAILED: (
        "the worker crashed",
        "read the traceback above in this log; reproduce with `nightshard-worker run --spec <spec_uri>`",
    ),
    EXIT_BAD_SPEC: (
        "the input or the spec does not fit the model",
        "read the error above (it names file and column), fix the upstream data or the pipeline config, "
        "then clear this task",
    ),
    EXIT_TOO_MANY_BAD_ROWS: (
        "too many rows were quarantined",
        "open the quarantine file named above to see the reasons; fix the upstream data, or raise "
        "validation.max_bad_row_fraction_per_shard if they are expected",
    ),
    EXIT_PREEMPTED: (
        "the worker was stopped (SIGTERM, e.g. preemption) after committing its progress",
        "nothing: the retry resumes after the last committed chunk; clear the task if retries ran out",
    ),
}


PREEMPTED_MESSAGE = "preempted by Kueue; the retry resumes from the last checkpoint"


def read_shard_result(result_uri: str) -> ShardResultDocument:
    """The ShardResult document the worker wrote at `result_uri` (gs://, file://, or a path), as the infer
    task's XCom; plan reads it through `ShardResult.from_dict` to check it."""
    document: ShardResultDocument = storage.read_json(result_uri)
    return document


def is_deterministic_failure(code: int | None) -> bool:
    """Exit 2 (bad spec) and 3 (too many bad rows) fail the same way on every retry: fail at once."""
    return code in (EXIT_BAD_SPEC, EXIT_TOO_MANY_BAD_ROWS)


def is_preemption(code: int | None) -> bool:
    """Exit 75: SIGTERM honoured after committing; retried without using up the retry budget."""
    return code == EXIT_PREEMPTED


def explain_exit(code: int) -> tuple[str, str]:
    """(cause, next step) for a worker exit code; signals show as negative codes."""
    if code in _EXPLANATIONS:
        return _EXPLANATIONS[code]
    if code < 0 or code in (137, 143):
        signal_number = -code if code < 0 else code - 128
        return (
            f"the worker was killed by signal {signal_number}",
            "check memory limits and the node's events; the retry resumes from the last checkpoint",
        )
    return ("the worker exited with an undocumented code", _EXPLANATIONS[EXIT_FAILED][1])
