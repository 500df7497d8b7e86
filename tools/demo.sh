#!/usr/bin/env bash
# The main job on the embedded stand-in: builds the stand-in data, then runs a table notebook headless through
# Papermill. Extra arguments go to papermill (e.g. -p method pretrained).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
. .venv/bin/activate
export MPLBACKEND=Agg
nb=${SSML_NOTEBOOK:-table1_cub_pretrained}
# stand-in runs write to runs/ (git-ignored); only python -m ssml_lib.experiments.record writes results/standin/
mkdir -p runs/executed
papermill -k python3 "notebooks/${nb}.ipynb" "runs/executed/${nb}.ipynb" "$@"
echo "Executed notebook: runs/executed/${nb}.ipynb"
