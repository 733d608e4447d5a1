#!/usr/bin/env bash
# Run THERE, on the lent GPU machine (device tool: carry [".whl"]), after bench/device_wheels.sh here:
#   bash bench/device_check.sh
# The image and tabular workloads at their GPU sizes, every variant but Ray Data (not installed
# there), into $OUT: per-workload JSON, the scaling JSON and PNG, and the whole log. About 5
# minutes on an H100/H200 by estimate; not yet run on one.
set -uo pipefail
OUT="${OUT:-/tmp/nightshard-device-check}"
mkdir -p "$OUT/results"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/worker/src:$PWD/plugins:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
python3 -m bench.run --workloads "${WORKLOADS:-image,tabular,tabular_wide}" --no-ray --device cuda \
  --threads "${THREADS:-8}" --out "$OUT/results" "$@" 2>&1 | tee "$OUT/bench.log"
