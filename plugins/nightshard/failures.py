"""Errors that a retry cannot fix: the task fails at once instead of waiting out its retries.

Bad input (a truncated file, a missing column, an empty partition), a bad param or config, a price
table without the device: the same call fails the same way a minute later, so retrying only delays the
alert and repeats the traceback. Airflow's AirflowFailException means exactly "fail, do not retry".
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class PermanentError(ValueError, AirflowFailException):
    """A deterministic failure: the message says what is wrong and what to fix; no retry is attempted."""
