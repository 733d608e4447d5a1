"""nightshard worker: scores one shard. Importing this package loads no torch."""
