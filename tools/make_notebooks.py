"""Generate notebooks/<table>.ipynb from one template: this file is the canonical source of the notebooks.

Run `python tools/make_notebooks.py` after editing; `--check` (run by the tests) fails if a committed notebook
differs from what this script would write. Cell ids are deterministic and no outputs are stored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ssml_lib.experiments.tables import TABLES  # noqa: E402

PARAMETERS = '''\
method = "{method}"  # the row: {rows}
data_root = None  # None: the embedded stand-in; else the folder holding {folders}
params_file = None  # e.g. "params/{table}/{example}.yaml" (or give it to papermill with -f)
standin_size = "default"  # stand-in scale: "tiny" (tests) or "default" (minutes on a 2-core CPU)
device = "auto"  # "auto", "cpu" or "cuda"
seed = 0'''

FOLDERS = {"recall": {"cub200": "CUB_200_2011/", "cars196": "cars196/", "sop": "Stanford_Online_Products/"},
           "revisited": "gldv2/, roxford5k/, rparis6k/"}


def notebook(name: str) -> nbformat.NotebookNode:
    spec = TABLES[name]
    number = name.split("_")[0].replace("table", "")
    folders = FOLDERS["revisited"] if spec.protocol == "revisited" else FOLDERS["recall"][spec.train_dataset]
    example = next((m for m in spec.methods if m != "pretrained"), spec.methods[0])
    intro = (f"# Table {number}: {spec.caption}\n\n"
             f"From the thesis *Self-supervised Metric Learning* (seed 004), Table {number}. Backbone "
             f"{spec.backbone} ({'ImageNet pre-trained' if spec.init == 'imagenet' else 'from scratch'}); "
             f"rows: {', '.join(f'`{m}`' for m in spec.methods)}.\n\n"
             f"- One row: `papermill notebooks/{name}.ipynb out.ipynb -p method {example}`\n"
             f"- Paper scale: `papermill notebooks/{name}.ipynb out.ipynb -f params/{name}/{example}.yaml "
             f"-p data_root /data`\n\n"
             "With no `data_root` the notebook runs on the embedded **stand-in** (small synthetic datasets in the "
             "real layouts): its numbers check the pipeline and are labelled as stand-in results; they are not "
             "comparable with the paper's. Results go to `results/` (stand-in: `results/standin/`) with their "
             "provenance.")
    params = PARAMETERS.format(method="pretrained", rows=", ".join(spec.methods), folders=folders, table=name,
                               example=example)
    cells = [
        nbformat.v4.new_markdown_cell(intro),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from ssml_lib.experiments import run_notebook_row, show\n\n"
                                  f'row = run_notebook_row("{name}", globals())'),
        nbformat.v4.new_code_cell("show(row)"),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"{name.split('_')[0]}-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(name)) + "\n"


NOTEBOOKS = tuple(TABLES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed notebook has drifted")
    args = parser.parse_args()
    stale = []
    for name in NOTEBOOKS:
        path = REPO / "notebooks" / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path.relative_to(REPO)))
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print("notebooks out of date with tools/make_notebooks.py (run it and commit):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
