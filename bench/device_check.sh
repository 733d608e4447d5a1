#!/usr/bin/env bash
# Run THERE, on the lent GPU machine (device tool: carry [".whl"]), after bench/device_wheels.sh here:
#   bash bench/device_check.sh
# The image and tabular workloads at their GPU sizes, every variant but Ray Data (not installed
# there), into $OUT: per-workload JSON, the scaling JSON and PNG, and the whole log; then the llm
# handler's CUDA paths (below). About 5 minutes on an H100/H200 by estimate, plus ~2 for the llm
# part; not yet run on one.
set -uo pipefail
OUT="${OUT:-/tmp/nightshard-device-check}"
mkdir -p "$OUT/results"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/worker/src:$PWD/plugins:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
python3 -m bench.run --workloads "${WORKLOADS:-image,tabular,tabular_wide}" --no-ray --device cuda \
  --threads "${THREADS:-8}" --out "$OUT/results" "$@" 2>&1 | tee "$OUT/bench.log"
# The llm handler's CUDA path on SmolLM2's architecture with random weights (bench/llm_stand_in.py):
# the layer-wise split through accelerate hooks (three "devices" on the one GPU) answers as the
# unsplit model, then bench.llm's tokens/s for classify and generate, with vLLM where installed.
python3 -m bench.llm_stand_in build --config .whl/smollm2-config --out /tmp/smollm2-random 2>&1 | tail -2
python3 -m bench.llm_stand_in check-split --model /tmp/smollm2-random --device cuda 2>&1 | tee "$OUT/llm-split.log"
for task in classify generate; do
  python3 -m bench.llm --task "$task" --device cuda --precision bf16 --model /tmp/smollm2-random --rows 2048 \
    --batch-size 256 --max-batch-tokens 65536 --threads "${THREADS:-8}" \
    --output "$OUT/results/llm-$task-cuda.json" 2>&1 | tail -30 | tee -a "$OUT/bench.log"
done
