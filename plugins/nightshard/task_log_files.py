"""A log file per task try under `airflow dags test`, where an executor would have written it.

`dag.test()` runs every task in-process and prints its log to the terminal only; Airflow's own
file (`$AIRFLOW_HOME/logs/dag_id=.../run_id=.../task_id=.../[map_index=N/]attempt=N.log`) is written
by the supervisor of a real executor. This task listener (registered by `plugins/nightshard_task_logs.py`)
copies everything the try prints (stdout and stderr, at the file-descriptor level, so the worker
subprocess's lines too) into that same path, and ends a failed try's file with its cause and next
step. Under an executor it does nothing: the supervisor writes the file itself.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

_current: _TeeToFile | None = None


def log_file_path(base_folder: str, *, dag_id: str, run_id: str, task_id: str, map_index: int | None,
                  try_number: int) -> Path:
    """Airflow's default log_filename_template, rendered."""
    mapped = f"map_index={map_index}/" if map_index is not None and map_index >= 0 else ""
    return Path(base_folder) / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / (
        f"{mapped}attempt={try_number}.log")


def current_log_file() -> str | None:
    """The file the running try's log is copied to, when there is one (dag.test)."""
    return str(_current.path) if _current is not None else None


def failure_footer(task_id: str, cause: str, next_step: str) -> str:
    """The last lines of a failed try: what broke and what to do, after every traceback."""
    return f"\n=== {task_id} FAILED. Cause: {cause.strip() or 'unknown: see above'}\n=== Next step: {next_step}\n"


class _TeeToFile:
    """Copies what is written to fds 1 and 2 into a file, and still to where they pointed."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in stop()
        self._lock = threading.Lock()
        self._saved: dict[int, int] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        _flush_python_streams()
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            self._saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
            thread = threading.Thread(target=self._pump, args=(read_end, self._saved[fd]), daemon=True,
                                      name=f"task-log-tee-{fd}")
            thread.start()
            self._threads.append(thread)

    def write(self, text: str) -> None:
        _flush_python_streams()
        os.write(1, text.encode())

    def stop(self) -> None:
        _flush_python_streams()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)  # closes the pipe's last write end: the pump sees EOF
        for thread in self._threads:
            thread.join(timeout=10)
        for saved in self._saved.values():
            os.close(saved)
        self._file.close()

    def _pump(self, read_end: int, original: int) -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while data := pipe.read(65536):
                os.write(original, data)
                with self._lock:
                    self._file.write(data)


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _running_under_dag_test() -> bool:
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms)


def _base_log_folder() -> str:
    from airflow.configuration import conf

    return conf.get("logging", "base_log_folder")


# When each run's first task started under dag.test, which starts its DagRun at the logical date.
_run_started: dict[str, Any] = {}


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    global _current
    if _current is not None or not _running_under_dag_test():
        return
    from airflow.sdk import timezone

    _run_started.setdefault(task_instance.run_id, timezone.utcnow())
    path = log_file_path(_base_log_folder(), dag_id=task_instance.dag_id, run_id=task_instance.run_id,
                         task_id=task_instance.task_id, map_index=task_instance.map_index,
                         try_number=int(task_instance.try_number or 1))
    tee = _TeeToFile(path)
    tee.start()
    _current = tee
    tee.write(f"task log of this try: {path}\n")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _finish(None, task_instance)


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _finish(None, task_instance)


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: BaseException | None) -> None:
    _finish(error, task_instance, failed=True)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _correct_start_date(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _correct_start_date(dag_run)


def _correct_start_date(dag_run: Any) -> None:
    """dag.test starts a DagRun at its logical date, so Airflow's "DagRun Finished ... run_duration" read
    days; Airflow logs that line from this same object right after the listener returns."""
    started = _run_started.pop(dag_run.run_id, None)
    if started is not None and dag_run.start_date is not None and dag_run.start_date < started:
        dag_run.start_date = started


def _finish(error: BaseException | None, task_instance: Any, failed: bool = False) -> None:
    global _current
    tee, _current = _current, None
    if tee is None:
        return
    try:
        if failed:
            from nightshard.failures import cause_and_next_step
            from nightshard.notifications.messages import default_next_step

            cause, next_step = cause_and_next_step(error)
            tee.write(failure_footer(task_instance.task_id, cause,
                                     next_step or default_next_step(task_instance.task_id)))
    finally:
        tee.stop()
