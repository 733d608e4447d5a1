"""Pipeline configs: loading, the schema, a run's parameters."""
