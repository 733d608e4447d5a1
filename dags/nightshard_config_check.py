"""
### nightshard config check

Holds no DAG. When a pipeline config in `dags/pipelines/` cannot become a DAG, this file fails to
import with one error naming each broken file, the field and the fix, so it shows in the Airflow UI's
import errors while every valid pipeline keeps running.
"""

from nightshard.dag_factory import raise_for_broken_configs

raise_for_broken_configs()
