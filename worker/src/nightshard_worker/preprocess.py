"""Preprocess stage: read steps -> prepared tensors, on a small thread pool, order kept."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nightshard_worker.handlers.base import ModelHandler, PreparedRows
from nightshard_worker.metrics import StageClock
from nightshard_worker.reader import ReadStep
from nightshard_worker.stage_queue import END, StageFailure, get_unless_stopped, put_unless_stopped


class PreprocessThread(threading.Thread):
    """Submits each read step to the pool and forwards (step, future) in read order.

    The bounded `out` queue holds futures, so at most its depth of steps is being decoded or
    waiting for the device at any time: memory does not grow with the shard.
    """

    def __init__(self, *, handler: ModelHandler, workers: int, source: queue.Queue, out: queue.Queue,
                 stop: threading.Event, clock: StageClock):
        super().__init__(name="preprocess", daemon=True)
        self.handler = handler
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="preprocess")
        self.source = source
        self.out = out
        self.stop = stop
        self.clock = clock

    def run(self) -> None:
        try:
            while True:
                item = get_unless_stopped(self.source, self.stop)
                if item is END or isinstance(item, StageFailure):
                    put_unless_stopped(self.out, item, self.stop)
                    return
                future = self.pool.submit(self._prepare, item)
                if not put_unless_stopped(self.out, (item, future), self.stop):
                    return
        except BaseException as error:
            put_unless_stopped(self.out, StageFailure(error), self.stop)
        finally:
            # Futures already handed on must still complete at END; only a stop abandons them.
            self.pool.shutdown(wait=False, cancel_futures=self.stop.is_set())

    def _prepare(self, read_step: ReadStep) -> PreparedRows:
        started = time.perf_counter()
        prepared = self.handler.preprocess(read_step.table)
        self.clock.add("preprocess", time.perf_counter() - started)
        return prepared


