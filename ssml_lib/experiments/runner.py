"""Fill one row of a thesis table: data -> initial network -> (training) -> protocol -> results + provenance.

``run_table_row(table, params_file=None, overrides=None)`` is the one call a table notebook makes. Parameters
come from the params file(s) and the notebook's parameters cell, checked by the typed configs (unknown or
mistyped names are refused before any work starts).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd
import torch

from ..config import EvalConfig, RunConfig, to_dict
from ..errors import ConfigError
from ..paths import shown_path
from ..provenance import collect_provenance, fingerprint_files
from ..results import render_table, side_by_side, write_results
from .datasets import dataset_root, open_train_set
from .evaluate import evaluate_recall, evaluate_revisited
from .paper_tables import PAPER_PROTOCOLS, evaluate_paper_table
from .preflight import check_row_data
# The row's parts, re-exported here (callers and notebooks import them from the runner):
from .row_model import (NORMALIZATION, STANDIN_BACKBONE, ModelConfig, init_head_by_pca, initial_model,  # noqa: F401
                        resolve_device, wants_pretrained_fc)
from .row_params import (STANDIN_PARAMS, TINY_PARAMS, resolve_params, run_dir_for, table_method_settings,  # noqa: F401
                         tiny_layer)
from .tables import TableSpec, get_table


def stage_commits(method_run) -> dict:
    """Stage name -> the git state its training ran at (from the stage's own provenance). A finished run folder
    is reused, so a row can be evaluated at a later commit than it was trained at; the record says both."""
    out = {}
    for stage in method_run.stages:
        try:
            rec = json.loads((Path(stage.out_dir) / "provenance.json").read_text(encoding="utf-8"))
            out[stage.name] = rec.get("git")
        except (OSError, ValueError, AttributeError):
            out[stage.name] = None
    return out


@dataclass
class RowResult:
    table: str
    method: str
    standin: bool
    rows: pd.DataFrame
    side_by_side: pd.DataFrame
    markdown: str
    paths: dict
    provenance: dict
    info: dict = field(default_factory=dict)


def evaluate(spec: TableSpec, model, roots: Mapping[str, Path], run: RunConfig, mcfg: ModelConfig,
             device: torch.device, progress: bool = True, *, standin: bool = False, data=None) -> tuple[list, dict]:
    """The table's protocol on every evaluation set. ``data``: the row's checked data
    (:func:`~.preflight.check_row_data`): the test images it left out and the K each test split allows."""
    rows: list = []
    info: dict = {}
    norm = NORMALIZATION
    ecfg = run.eval
    if spec.protocol in PAPER_PROTOCOLS:
        return evaluate_paper_table(spec, model, roots, run, mcfg, device, progress, standin=standin)
    check_whitening(spec, run)
    for name in spec.eval_datasets:
        if spec.protocol == "recall":
            ks = data.ks.get(name, ecfg.ks) if data is not None else ecfg.ks
            r, i = evaluate_recall(model, name, roots[name], replace(ecfg, ks=ks), image_size=run.data.image_size,
                                   resize_size=run.data.resize_size, normalize=norm, device=device,
                                   progress=progress, standin=standin, preset=mcfg.augmentation,
                                   skip=data.eval_skip.get(name) if data is not None else None)
        else:
            r, i = evaluate_revisited(model, name, roots[name], ecfg, max_side=mcfg.max_side, normalize=norm,
                                      device=device, progress=progress, standin=standin)
        rows += r
        info[name] = i
    return rows, info


def check_whitening(spec: TableSpec, run: RunConfig) -> None:
    """``whitening`` belongs to the method papers' retrieval tables; the thesis's tables refuse it."""
    if run.eval.whitening != "none" and spec.protocol not in PAPER_PROTOCOLS:
        raise ConfigError(f"whitening={run.eval.whitening!r}: the thesis's tables have no whitened rows; it is a "
                          "setting of the method papers' retrieval tables (paper_insclr_*). Fix: drop it.")


def train_row(spec: TableSpec, resolved: dict, model, roots: Mapping[str, Path], *, standin: bool,
              device: torch.device, progress: bool = True, data=None):
    """Train the row's method (all its stages) and return the fit_method run (its ``.method`` embeds).
    ``data``: the row's checked data (:func:`~.preflight.check_row_data`); None checks it here."""
    from ..data import build_transform
    from ..methods.schedule import fit_method

    run, mcfg = resolved["run"], resolved["model"]
    size, resize = run.data.image_size, run.data.resize_size
    train_tf = build_transform(mcfg.augmentation, train=True, size=size, resize=resize, normalize=NORMALIZATION)
    test_tf = build_transform(mcfg.augmentation, train=False, size=size, resize=resize, normalize=NORMALIZATION)
    if data is None:
        data = check_row_data(spec, resolved, roots, standin=standin)
    train_set = data.train
    head_record = init_head_by_pca(model, train_set, test_tf, run, device, progress=progress) \
        if mcfg.head_init == "pca" else {"head_init": mcfg.head_init}
    eval_fn = None
    if spec.per_stage:  # Table 8: the protocol after every stage (cycle)
        def eval_fn(method, ctx):
            rows, _ = evaluate(spec, method, roots, run, mcfg, ctx.device, progress=False, standin=standin,
                               data=data)
            return {f"eval/{r['dataset']}/{r['metric']}": r["value"] for r in rows}
    tcfg = resolved["train"]
    if eval_fn is not None:
        tcfg = replace(tcfg, eval_every=max(tcfg.epochs, 1))
    method_run = fit_method(run.method, model=model, train_set=train_set, method_cfg=resolved["method"],
                            train_cfg=tcfg, out_dir=run_dir_for(spec.name, run.method, standin, resolved),
                            train_transform=train_tf, test_transform=test_tf, eval_fn=eval_fn, progress=progress,
                            standin=standin)
    method_run.info["head"] = head_record
    return method_run


def _stage_rows(method_run) -> list[dict]:
    """Rows of the evaluation at the end of every stage, read back from the stages' logs (also for stages that
    a re-run skipped because they were complete)."""
    from ..engine import read_log

    rows = []
    for i, stage in enumerate(method_run.stages):
        history = read_log(stage.log_path) if Path(stage.log_path).is_file() else stage.history
        evals = [r for r in history if any(k.startswith("eval/") for k in r)]
        if not evals:
            continue
        for key, value in evals[-1].items():
            if key.startswith("eval/"):
                _, dataset, metric = key.split("/")
                rows.append({"dataset": dataset, "metric": metric, "value": value, "setting": f"cycle{i + 1}"})
    return rows


def run_table_row(table: str, params_file: str | Path | Sequence[str | Path] | None = None,
                  overrides: Optional[Mapping[str, Any]] = None, *, progress: bool = True) -> RowResult:
    """Run ``overrides['method']`` (or the params file's) on ``table`` and write its results."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("run_table_row runs in one process; under torchrun every rank would evaluate and write. "
                          "Fix: python -m ssml_lib.experiments.run_table <table> --gpus N (trains with torchrun, "
                          "then evaluates once), or torchrun ... -m ssml_lib.experiments.train_row.")
    spec = get_table(table)
    resolved = resolve_params(table, params_file, overrides)
    run: RunConfig = resolved["run"]
    mcfg: ModelConfig = resolved["model"]
    check_whitening(spec, run)  # before any work
    if run.eval.ks == EvalConfig().ks and spec.ks != run.eval.ks:
        run = replace(run, eval=replace(run.eval, ks=spec.ks))  # the table's K set unless given explicitly
        resolved["run"] = run
    start = time.time()
    device = resolve_device(run.device)
    standin = resolved["standin"]
    needed = dict.fromkeys((spec.train_dataset, *spec.eval_datasets, *spec.extra_datasets))
    roots = {name: dataset_root(name, run.data.data_root, standin_size=run.data.standin_size,
                                standin_seed=run.data.standin_seed) for name in needed}
    data = check_row_data(spec, resolved, roots, standin=standin)  # everything the row reads, before any work
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=run.method,
                                      progress=progress, pretrained_fc=wants_pretrained_fc(resolved))
    info: dict = {}
    rows: list = []
    embedder = model
    if run.method != "pretrained":
        method_run = train_row(spec, resolved, model, roots, standin=standin, device=device, progress=progress,
                               data=data)
        embedder = method_run.method
        info["training"] = {"out_dir": shown_path(method_run.out_dir), "wall_time_s": method_run.wall_time_s,
                            "stages": [s.name for s in method_run.stages], "head": method_run.info.get("head"),
                            "trained_at": stage_commits(method_run),
                            "final": {k: v for k, v in (method_run.history[-1] if method_run.history else {}).items()
                                      if isinstance(v, (int, float, str)) or v is None}}
        if spec.per_stage:
            rows += _stage_rows(method_run)
    final_rows, info["evaluation"] = evaluate(spec, embedder, roots, run, mcfg, device, progress, standin=standin,
                                              data=data)
    info["data_checks"] = data.record
    if resolved["standin_data"] is not None:  # stand-in folders given as data_root: results are stand-in
        info["standin_data"] = {**resolved["standin_data"], "note": "stand-in data (the generator's marker) passed "
                                "as data_root; labelled stand-in"}
    if not spec.per_stage or run.method == "pretrained":
        rows += final_rows
    fingerprint = ";".join(f"{name}={fingerprint_files(root, sample=2000)}" for name, root in roots.items())
    provenance = collect_provenance({k: to_dict(resolved[k]) for k in ("run", "model", "method", "train")},
                                    standin=standin, data_fingerprint=fingerprint, wall_time_s=time.time() - start,
                                    extra={"model": model_info, **info, "params_files": resolved["files"],
                                           "data_roots": {k: shown_path(v) for k, v in roots.items()}})
    paths = write_results(table, run.method, rows, provenance, results_dir=run.output_dir)
    ours = pd.DataFrame(rows).assign(method=run.method)
    return RowResult(table, run.method, standin, pd.DataFrame(rows), side_by_side(table, ours),
                     render_table(table, run.output_dir, standin=standin, size=run.data.standin_size if standin
                                  else None), paths, provenance, info)


def run_notebook_row(table: str, namespace: Mapping[str, Any], *, progress: bool = True) -> RowResult:
    """The table notebooks' one call: every parameter in the notebook's namespace (its parameters cell and
    whatever papermill injected with -p or -f) is checked by the typed configs; unknown names are refused."""
    from ..config import notebook_parameters

    # None means "not given": the params file's value, else the default (a notebook's literal defaults would
    # otherwise always beat the params file)
    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    params_file = params.pop("params_file", None)
    return run_table_row(table, params_file, params, progress=progress)


def show(row: RowResult) -> None:
    """Display a row's table (paper beside ours, stand-in label, provenance) in a notebook."""
    from IPython.display import Markdown, display

    label = "STAND-IN DATA (synthetic; not comparable with the paper)" if row.standin else "real data"
    display(Markdown(f"**{row.table} / {row.method}: {label}**"))
    display(row.side_by_side[row.side_by_side["method"] == row.method])
    display(Markdown(row.markdown))


__all__ = ["ModelConfig", "NORMALIZATION", "RowResult", "STANDIN_BACKBONE", "STANDIN_PARAMS", "TINY_PARAMS", "evaluate",
           "init_head_by_pca", "initial_model", "open_train_set", "resolve_device", "resolve_params", "run_dir_for",
           "run_notebook_row", "run_table_row", "show", "table_method_settings", "tiny_layer", "train_row"]
