"""SIGTERM (node preemption, pod deletion, Airflow on_kill) becomes a stop request, not a crash."""

from __future__ import annotations

import logging
import signal
import threading

from nightshard_worker import tuning

log = logging.getLogger(__name__)


def install_stop_on_sigterm(stop: threading.Event) -> None:
    """The stages see `stop` and wind down; the shard lifecycle commits and exits 75 (EXIT_PREEMPTED)."""

    def request_stop(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.warning("%s received: stopping after the forward pass in flight, committing finished row "
                        "groups, exiting 75 (budget %.0fs, inside the %.0fs GKE gives a Spot pod)",
                        signal.Signals(signum).name, tuning.PREEMPTION_EXIT_BUDGET_SECONDS,
                        tuning.SPOT_SHUTDOWN_GRACE_SECONDS)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
