"""Airflow plugin: under `airflow dags test`, a log file per task try where README says task logs are
(`$AIRFLOW_HOME/logs/`, Airflow's own layout). The listener is `nightshard.task_log_files`."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from nightshard import task_log_files


class NightshardTaskLogsPlugin(AirflowPlugin):
    name = "nightshard_task_logs"
    listeners = [task_log_files]
