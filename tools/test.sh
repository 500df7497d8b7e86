#!/usr/bin/env bash
# The whole test suite: unit tests, then every notebook executed at its stand-in defaults by nbval.
# Both run on SSML_TEST_WORKERS pytest-xdist workers (default: the CPU count, at most 4; 1 runs in-process),
# each file (a notebook's cells in order, on one kernel) on one worker, the CPU threads shared between workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export TQDM_DISABLE=${TQDM_DISABLE:-1} MPLBACKEND=Agg
cpus=$(nproc 2>/dev/null || echo 1)
workers=${SSML_TEST_WORKERS:-$(( cpus < 4 ? cpus : 4 ))}
parallel=()
if [ "$workers" -gt 1 ]; then
  parallel=(-n "$workers" --dist loadfile)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cpus / workers > 0 ? cpus / workers : 1 ))}
fi
python -m pytest tests "${parallel[@]}" --durations=15 "$@"
if ls notebooks/*.ipynb >/dev/null 2>&1; then
  python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks "${parallel[@]}" --durations=25
fi
