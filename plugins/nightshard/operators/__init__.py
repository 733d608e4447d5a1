"""Operators, sensors and triggers of the pipeline DAGs."""
