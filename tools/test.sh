#!/usr/bin/env bash
# The whole test suite: unit tests, then every notebook executed at its stand-in defaults by nbval.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export TQDM_DISABLE=${TQDM_DISABLE:-1} MPLBACKEND=Agg
python -m pytest tests "$@"
if ls notebooks/*.ipynb >/dev/null 2>&1; then
  python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
fi
