"""The local backend: the worker CLI as a subprocess of the Airflow worker."""
