"""Before publishing: row reconciliation, schema, nulls, drift, unique ids."""
