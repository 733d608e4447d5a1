"""Failures the worker tells apart, each mapped to the exit code that names the next step."""

from __future__ import annotations

from nightshard_worker.contract import (
    EXIT_BAD_SPEC,
    EXIT_FAILED,
    EXIT_PREEMPTED,
    EXIT_TOO_MANY_BAD_ROWS,
)


class WorkerError(Exception):
    """A failure with a message meant for the on-call engineer."""

    exit_code = EXIT_FAILED


class BadInputError(WorkerError):
    """The spec or the input data does not match what the model needs: fix input or config."""

    exit_code = EXIT_BAD_SPEC


class TooManyBadRowsError(WorkerError):
    """The quarantined share is above the spec's threshold."""

    exit_code = EXIT_TOO_MANY_BAD_ROWS


class RowTooLargeError(WorkerError):
    """A single row runs the device out of memory even alone in its batch."""


class ShardBusyError(WorkerError):
    """Another live worker holds this shard's lock past the wait (an orphaned earlier attempt)."""


class PreemptedError(WorkerError):
    """SIGTERM arrived; progress is committed and a retry resumes."""

    exit_code = EXIT_PREEMPTED
