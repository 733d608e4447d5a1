"""Every tuning constant of the worker, in one place, each with the reason for its value."""

from __future__ import annotations

# Queue depths between stages, in steps (row groups grouped to a few batches, `reader.plan_steps`).
# Two steps waiting per stage keep the device fed while the next one decodes; more would only grow
# memory with step size, never throughput.
READ_QUEUE_STEPS = 2  # read -> preprocess: the reader stays one step ahead of the decoders
PREPARED_QUEUE_STEPS = 4  # preprocess -> predict: covers one step per decoder thread plus slack
WRITE_QUEUE_STEPS = 4  # predict -> write: absorbs a slow object-store commit without stalling the GPU

# How often a blocked stage wakes to check for SIGTERM or a failed neighbour. Short enough that a
# preemption is noticed at once, long enough to cost nothing.
QUEUE_POLL_SECONDS = 0.2

# Uncommitted scored rows the writer may hold while it waits for `runtime.commit_interval_seconds`:
# at that size it commits early. 64 MiB is a few seconds of a cheap model's output on a GPU (id +
# score: ~5M rows; MiniLM embeddings: ~40k rows), small beside a pod's memory, and one chunk of it
# uploads to an object store well inside the preemption budget below.
MAX_UNCOMMITTED_BYTES = 64 << 20

# Batch-time histogram buckets (seconds): from a tiny tabular batch on GPU to a big CPU text batch.
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Drift histograms: 20 bins is coarse enough to be stable across nights on a few thousand rows and
# fine enough to show a shifted score distribution.
DRIFT_HISTOGRAM_BINS = 20

# The SIGTERM promise: after the signal the worker drops the row group in flight (it stops between
# forward passes), commits what is complete and exits. On Spot node shutdown GKE gives pods about
# 15 s whatever terminationGracePeriodSeconds says; 10 s leaves a third of it for a slow commit.
PREEMPTION_EXIT_BUDGET_SECONDS = 10.0
# What GKE grants a pod on Spot VM shutdown (graceful node shutdown), the bound the budget must fit.
SPOT_SHUTDOWN_GRACE_SECONDS = 15.0

# Prometheus push at the end of a shard: a gateway that does not answer in this time is reported
# as a warning; the shard's output is already committed and must not wait on monitoring.
PUSHGATEWAY_TIMEOUT_SECONDS = 10.0

# Text: tokens per sequence when the model options do not say; MiniLM was trained on 256.
DEFAULT_TEXT_MAX_LENGTH = 256

# Images: EfficientNet-Lite0's training resolution and ImageNet statistics of its weights.
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
