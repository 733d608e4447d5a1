"""Bounded hand-off between stages that never blocks past a stop request."""

from __future__ import annotations

import queue
import threading
from typing import Any

from nightshard_worker import tuning

END = object()  # the producer is done: no more items follow


class StageFailure:
    """Carries an exception from a stage thread to the main thread, in stream order."""

    def __init__(self, error: BaseException):
        self.error = error


def put_unless_stopped(target: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put `item`, waiting for room; False (item dropped) once `stop` is set."""
    while not stop.is_set():
        try:
            target.put(item, timeout=tuning.QUEUE_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def get_unless_stopped(source: queue.Queue, stop: threading.Event) -> Any:
    """The next item, or END once `stop` is set."""
    while not stop.is_set():
        try:
            return source.get(timeout=tuning.QUEUE_POLL_SECONDS)
        except queue.Empty:
            continue
    return END


def depth(q: queue.Queue) -> str:
    return f"{q.qsize()}/{q.maxsize}"
