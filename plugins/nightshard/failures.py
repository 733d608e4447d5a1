"""Errors as data: what broke and what on-call does next, as fields; and errors a retry cannot fix.

Bad input (a truncated file, a missing column, an empty partition), a bad param or config, a price
table without the device: the same call fails the same way a minute later, so retrying only delays the
alert and repeats the traceback. Airflow's AirflowFailException means exactly "fail, do not retry".
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

NEXT_STEP_MARKER = "Next step:"


class ExplainedError(Exception):
    """An error carrying `cause` (what broke, and where) and `next_step` (what on-call does) as fields.

    Its text is "<cause> Next step: <next_step>", so logs and tracebacks read as before; the alert
    and the log footer take the fields, not the text.
    """

    def __init__(self, cause: str, *, next_step: str | None = None):
        self.cause = cause
        self.next_step = next_step
        separator = "" if cause.endswith("\n") else " "
        super().__init__(cause if next_step is None else f"{cause}{separator}{NEXT_STEP_MARKER} {next_step}")


class PermanentError(ExplainedError, ValueError, AirflowFailException):
    """A deterministic failure: the message says what is wrong and what to fix; no retry is attempted."""


def cause_and_next_step(error: BaseException | None) -> tuple[str, str | None]:
    """(cause, next step or None) of a failure: the fields of an ExplainedError; for a foreign exception
    its text, and the next step its text names after "Next step:" (None when it names none)."""
    if error is None:
        return "unknown: see the task log", None
    if isinstance(error, ExplainedError) and error.next_step is not None:
        return error.cause.strip(), error.next_step
    text = str(error)
    if NEXT_STEP_MARKER in text:
        return text, text.split(NEXT_STEP_MARKER, 1)[1].strip().split("\n")[0]
    return text or f"{type(error).__name__}: see the task log", None
