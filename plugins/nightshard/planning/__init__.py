"""The plan task: Parquet footers, shards, the plan document."""
