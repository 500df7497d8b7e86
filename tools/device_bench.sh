#!/usr/bin/env bash
# On a GPU machine (the study's benchmarks and CUDA tests; see results/benchmarks/README.md):
#   bash tools/device_bench.sh "STEP" ["STEP" ...]
# Each STEP is a shell command run in the repository root after the set-up below, with its output appended to
# $OUT/log.txt (OUT defaults to /tmp/ssml-bench). Wheels in .whl/ (e.g. faiss-cpu, pytorch-metric-learning, for
# an image that lacks them) are installed into /tmp/site first. Example:
#   bash tools/device_bench.sh "python3 -m pytest -q tests/test_cuda_paths.py" \
#                              "python3 -m benchmarks.run --suite all --out \$OUT/bench"
set -o pipefail
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OUT=${OUT:-/tmp/ssml-bench}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"
  nproc; } 2>&1 | tee -a "$OUT/log.txt"
status=0
for step in "$@"; do
  echo "=== $(date -u +%H:%M:%S) $step" | tee -a "$OUT/log.txt"
  bash -c "$step" 2>&1 | tee -a "$OUT/log.txt" | grep -v -E "^USDT|profiler_st" | tail -40 || status=1
done
exit $status
