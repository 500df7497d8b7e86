#!/usr/bin/env bash
# The main job on the embedded stand-in: builds the stand-in data, then runs a table notebook headless through
# Papermill. Extra arguments go to papermill (e.g. -p method pretrained).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export MPLBACKEND=Agg
nb=${SSML_NOTEBOOK:-table1_cub_pretrained}
mkdir -p results/executed
papermill -k python3 "notebooks/${nb}.ipynb" "results/executed/${nb}.ipynb" "$@"
echo "Executed notebook: results/executed/${nb}.ipynb"
