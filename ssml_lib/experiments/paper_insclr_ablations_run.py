"""Run rows of the InsCLR paper's ablation tables (:mod:`.paper_insclr_ablations`): train on GLDv2 (or its
stand-in) as ``table7_gldv2`` does, evaluate on rOxford5k / rParis6k, and write the row under the ablation
table's name (``results/<table>/<row>.csv`` and ``.json``, stand-in runs apart), beside the paper's numbers.

Every row of a table, one after the other (a finished run folder is reused)::

    python -m ssml_lib.experiments.paper_insclr_ablations_run paper_insclr_table1_ablation [--rows a,b] \\
        [--data-root /data]   # with --data-root each row reads params/<table>/<row>.yaml
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any, Mapping, Optional

import pandas as pd

from ..config import EvalConfig, to_dict
from ..errors import ConfigError
from ..paths import REPO_ROOT, shown_path
from ..provenance import collect_provenance, fingerprint_files
from ..results import render_table, side_by_side, write_results
from .datasets import dataset_root
from .paper_insclr_ablations import BASE_TABLE, ROWS, AblationRow, get_row, resolve_ablation_row
from .preflight import check_row_data
from .row_model import initial_model, resolve_device
from .runner import RowResult, evaluate, stage_commits, train_row
from .tables import get_table


def run_ablation_row(table: str, row: str, params_file: Optional[str] = None,
                     overrides: Optional[Mapping[str, Any]] = None, *, progress: bool = True) -> RowResult:
    """Train (unless the row is ``pretrained``) and evaluate one row; write its results and provenance."""
    resolved = resolve_ablation_row(table, row, params_file, overrides)
    return run_settings_row(table, row, get_row(table, row), resolved, params_file, tuple(ROWS[table]),
                            progress=progress)


def run_settings_row(table: str, row: str, spec_row: AblationRow, resolved: dict, params_file: Optional[str],
                     rows: tuple[str, ...], *, progress: bool = True) -> RowResult:
    """Train and evaluate InsCLR with one row's settings (already resolved); write its results and provenance."""
    spec = replace(get_table(BASE_TABLE), name=table, methods=rows)  # its own run folders
    run, mcfg = resolved["run"], resolved["model"]
    if run.eval.ks == EvalConfig().ks and spec.ks != run.eval.ks:
        run = replace(run, eval=replace(run.eval, ks=spec.ks))
        resolved["run"] = run
    start, device, standin = time.time(), resolve_device(run.device), resolved["standin"]
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed)
             for name in dict.fromkeys((spec.train_dataset, *spec.eval_datasets))}
    data = check_row_data(spec, resolved, roots, standin=standin)
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=run.method,
                                      progress=progress)
    info: dict = {"ablation": {"table": table, "row": row, "paper_label": spec_row.label, "what": spec_row.what,
                               "settings": {k: list(v) if isinstance(v, tuple) else v
                                            for k, v in spec_row.settings.items()}, "base_table": BASE_TABLE}}
    embedder = model
    if run.method != "pretrained":
        method_run = train_row(spec, resolved, model, roots, standin=standin, device=device, progress=progress,
                               data=data)
        embedder = method_run.method
        final = method_run.history[-1] if method_run.history else {}
        info["training"] = {"out_dir": shown_path(method_run.out_dir), "wall_time_s": method_run.wall_time_s,
                            "stages": [s.name for s in method_run.stages], "trained_at": stage_commits(method_run),
                            "final": {k: v for k, v in final.items() if isinstance(v, (int, float, str)) or v is None}}
    rows, info["evaluation"] = evaluate(spec, embedder, roots, run, mcfg, device, progress, standin=standin,
                                        data=data)
    info["data_checks"] = data.record
    fingerprint = ";".join(f"{name}={fingerprint_files(root, sample=2000)}" for name, root in roots.items())
    files = resolved["files"] + ([str(params_file)] if params_file else [])
    provenance = collect_provenance({k: to_dict(resolved[k]) for k in ("run", "model", "method", "train")},
                                    standin=standin, data_fingerprint=fingerprint, wall_time_s=time.time() - start,
                                    extra={"model": model_info, **info, "params_files": files,
                                           "data_roots": {k: shown_path(v) for k, v in roots.items()}})
    paths = write_results(table, row, rows, provenance, results_dir=run.output_dir)
    ours = pd.DataFrame(rows).assign(method=row)
    size = run.data.standin_size if standin else None
    return RowResult(table, row, standin, pd.DataFrame(rows), side_by_side(table, ours),
                     render_table(table, run.output_dir, standin=standin, size=size), paths, provenance, info)


def run_ablation_notebook(table: str, namespace: Mapping[str, Any], *, progress: bool = True) -> RowResult:
    """The ablation notebooks' one call: ``row`` picks the row; every other parameter is checked and layered."""
    from ..config import notebook_parameters

    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    row = params.pop("row", None)
    if not isinstance(row, str):
        raise ConfigError(f"give the row to run: -p row <one of {', '.join(ROWS.get(table, {}))}>.")
    return run_ablation_row(table, row, params.pop("params_file", None), params, progress=progress)


def show_ablation(result: RowResult) -> None:
    """The row's paper label and settings, then its table (paper beside ours, stand-in label, provenance)."""
    from IPython.display import Markdown, display

    from .runner import show

    a = result.info["ablation"]
    settings = ", ".join(f"`{k}: {v}`" for k, v in a["settings"].items())
    display(Markdown(f"Row `{a['row']}` = the paper's **{a['paper_label']}** ({a['what']}): {settings}"))
    show(result)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=sorted(ROWS))
    parser.add_argument("--rows", help="comma-separated rows (default: all)")
    parser.add_argument("--data-root", help="real data (each row then reads params/<table>/<row>.yaml)")
    parser.add_argument("--standin-size", choices=("tiny", "default"), default="default")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    rows = args.rows.split(",") if args.rows else list(ROWS[args.table])
    failed = []
    for row in rows:
        params: dict = {"device": args.device}
        pfile = None
        if args.data_root:
            params["data_root"] = args.data_root
            path = REPO_ROOT / "params" / args.table / f"{row}.yaml"
            pfile = str(path) if path.is_file() else None
        else:
            params["standin_size"] = args.standin_size
        try:
            result = run_ablation_row(args.table, row, pfile, params)
            print(f"{args.table}/{row}: {result.paths['csv']}")
        except Exception as exc:  # noqa: BLE001 - report every row, then fail
            failed.append(row)
            print(f"{args.table}/{row} FAILED: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
