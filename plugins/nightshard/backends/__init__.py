"""Where shards run: `local` (the worker as a subprocess) and `gke` (one pod per shard, admitted by Kueue)."""
