#!/usr/bin/env bash
# Run every row of a thesis table through its notebook (papermill) and rebuild results/<table>.md.
#   tools/run_table.sh table1_cub_pretrained [--methods a,b] [--data-root DIR] [--gpus N] [--dry-run] [-p k v ...]
# Uses $PYTHON, else the repository's .venv, else python3; the options are those of
# `python -m ssml_lib.experiments.run_table --help`. Exit status: 0 all rows ok, 1 some failed, 2 nothing ran.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
cd "$repo"
exec "$PYTHON" -m ssml_lib.experiments.run_table "$@"
