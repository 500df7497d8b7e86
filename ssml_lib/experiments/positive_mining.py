"""Positive mining over training: the positives each method mines for a few anchors, and precision curves.

The methods keep only the current epoch's mining state, so each method is trained here (its table row's
parameters, in its own run folder ``runs/<standin|real>/positive_mining/<table>/``) with the snapshot ``eval_fn``
of :mod:`.mining_snapshots`, which logs what the method mines for the chosen anchors after every epoch. A
finished run is read back from its logs. What is shown per method is ``RULES`` (also printed in the notebook).

The precision curves are each run's logged ``pos_precision`` (the method's own diagnostic over the whole
training set, see ssml_lib.methods), against epochs counted across stages. Labels are used for display and
precision only, never for training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..config import Config, load_config, notebook_parameters, to_dict
from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import shown_path
from ..provenance import collect_provenance
from .figures import (DISPLAY_NAMES, FigureResult, data_label, figures_dir, plot_mined_positives,
                      plot_precision_curves, save_figure, thumbnail)
from .mining_snapshots import (MINING_RULES, REJECTED_KEY, RULES, SNAPSHOT_KEY, pick_points,  # noqa: F401
                               read_precision_curves, read_snapshots, snapshot_fn, stage_logs)

FIGURE = "positive_mining"


# ---------------------------------------------------------------- the notebook


@dataclasses.dataclass(frozen=True)
class PositiveMiningConfig(Config):
    methods: tuple[str, ...] = ("spreading", "insclr", "stml")
    table: str = "table2_cub_scratch"
    n_anchors: int = 3
    n_points: int = 4
    n_show: int = 4
    params_dir: Optional[str] = None  # folder with <method>.yaml per method, e.g. params/table2_cub_scratch

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [m for m in self.methods if m not in MINING_RULES]
        if not self.methods or bad:
            raise ConfigError(f"positive mining is defined for {', '.join(MINING_RULES)}; got {bad or 'none'}. "
                              "Fix: choose among those (pretrained trains nothing; supervised uses labels).")
        if min(self.n_anchors, self.n_points, self.n_show) < 1:
            raise ConfigError("n_anchors, n_points and n_show must be >= 1. Fix: e.g. 3, 4, 4.")


def _params_file(cfg: PositiveMiningConfig, method: str) -> Optional[Path]:
    """``params_dir/<method>.yaml`` where it exists (a table's params folder need not cover every method)."""
    if cfg.params_dir is None:
        return None
    from ..config import _resolve_params_file

    try:
        return _resolve_params_file(Path(cfg.params_dir) / f"{method}.yaml")
    except ConfigError:
        return None


def train_with_snapshots(method: str, table: str, params_file: Any, overrides: Mapping[str, Any], *,
                         n_anchors: int, progress: bool = True) -> dict:
    """Train ``method`` on ``table``'s training set with the snapshot ``eval_fn``; a finished run is reused."""
    from ..data import build_transform
    from ..methods.schedule import fit_method
    from ..paths import runs_dir
    from .datasets import dataset_root
    from .runner import (NORMALIZATION, initial_model, open_train_set, resolve_device, resolve_params,
                         run_dir_for)
    from .tables import get_table

    spec = get_table(table)
    resolved = resolve_params(table, params_file, {"method": method, **overrides})
    run, mcfg = resolved["run"], resolved["model"]
    standin, device = run.data.data_root is None, resolve_device(run.device)
    root = dataset_root(spec.train_dataset, run.data.data_root, standin_size=run.data.standin_size,
                        standin_seed=run.data.standin_seed)
    train_set = open_train_set(spec, root, run, standin)
    if n_anchors > len(train_set):
        raise ConfigError(f"n_anchors={n_anchors} exceeds the {len(train_set)} training images. Fix: lower it.")
    anchors = np.sort(np.random.default_rng(run.seed).choice(len(train_set), n_anchors, replace=False))
    model, model_info = initial_model(spec, mcfg, standin=standin, size=run.data.standin_size, seed=run.seed,
                                      image_size=run.data.image_size, device=device, method=method,
                                      progress=progress)
    tag = hashlib.sha256(json.dumps(anchors.tolist()).encode()).hexdigest()[:6]
    out_dir = (runs_dir() / ("standin" if standin else "real") / FIGURE / table
               / f"{run_dir_for(table, method, standin, resolved).name}-a{tag}")
    preset = getattr(mcfg, "augmentation", "thesis")  # the row's own transforms, as train_row builds them
    tf = {train: build_transform(preset, train=train, size=run.data.image_size, resize=run.data.resize_size,
                                 normalize=NORMALIZATION) for train in (True, False)}
    method_run = fit_method(method, model=model, train_set=train_set, method_cfg=resolved["method"],
                            train_cfg=resolved["train"], out_dir=out_dir, train_transform=tf[True],
                            test_transform=tf[False], eval_fn=snapshot_fn(method, anchors), progress=progress,
                            standin=standin)
    return {"run_dir": out_dir, "anchors": anchors, "train_set": train_set, "standin": standin, "resolved": resolved,
            "model": model_info, "train_time_s": method_run.train_time_s}


def positive_mining_figure(methods=("spreading", "insclr", "stml"), *, table: str = "table2_cub_scratch",
                           n_anchors: int = 3, n_points: int = 4, n_show: int = 4, params_dir: Optional[str] = None,
                           method_params: Optional[Mapping[str, Mapping[str, Any]]] = None, progress: bool = True,
                           **overrides: Any) -> FigureResult:
    """Train each method with snapshots, then one mined-positives grid per method and one precision plot.

    ``overrides`` apply to every method's row (data_root, standin_size, device, seed, epochs, ...);
    ``method_params`` = {method: {name: value}} to one method only (e.g. {'stml': {'num_neighbors': 4}})."""
    from .runner import resolve_params

    start = time.time()
    cfg = load_config(PositiveMiningConfig, None, dict(methods=[methods] if isinstance(methods, str) else list(methods),
                                                       table=table, n_anchors=n_anchors, n_points=n_points,
                                                       n_show=n_show, params_dir=params_dir))
    own = dict(method_params or {})
    if not all(m in cfg.methods and isinstance(v, Mapping) for m, v in own.items()):
        raise ConfigError(f"method_params must map methods of {list(cfg.methods)} to dicts of parameters, got "
                          f"{own!r}. Fix: e.g. {{'stml': {{'epochs': 4}}}}.")
    per_method = {m: {**overrides, **dict(own.get(m, {}))} for m in cfg.methods}
    for m in cfg.methods:  # every method's parameters checked before anything trains
        resolve_params(cfg.table, _params_file(cfg, m), {"method": m, **per_method[m]})
    runs = {m: train_with_snapshots(m, cfg.table, _params_file(cfg, m), per_method[m], n_anchors=cfg.n_anchors,
                                    progress=progress) for m in cfg.methods}
    standin = next(iter(runs.values()))["standin"]
    first_run = next(iter(runs.values()))["resolved"]["run"]
    out = figures_dir(standin, first_run.output_dir, first_run.data.standin_size)
    figures, paths, shown = {}, {}, {}
    for m, r in runs.items():
        snaps = read_snapshots(r["run_dir"])
        points = [snaps[i] for i in pick_points(len(snaps), cfg.n_points)]
        side = max(r["resolved"]["run"].data.image_size, 64) if standin else 128
        multi = len({s["stage"] for s in snaps}) > 1
        names = [f"{p['stage']} ep {p['epoch']}" if multi else f"epoch {p['epoch']}" for p in points]
        fig, shown[m] = mined_positives_grid(r["train_set"], [int(a) for a in r["anchors"]], [points], names,
                                             n_show=cfg.n_show, side=side,
                                             title=f"{DISPLAY_NAMES.get(m, m)} (`{m}`): mined positives on "
                                                   f"{cfg.table} ({data_label(standin)})")
        figures[m] = fig
        paths[m] = save_figure(fig, out / f"{FIGURE}_{cfg.table}_{m}.png")
    curves = read_precision_curves({m: r["run_dir"] for m, r in runs.items()})
    figures["precision"] = plot_precision_curves(curves, title=f"Precision of mined positives, {cfg.table} "
                                                               f"({'stand-in' if standin else 'real data'})")
    paths["precision"] = save_figure(figures["precision"], out / f"{FIGURE}_{cfg.table}_precision.png")
    paths["precision_csv"] = atomic_write_text(out / f"{FIGURE}_{cfg.table}_precision.csv", curves.to_csv(index=False))
    provenance = collect_provenance(
        {"figure": FIGURE, "config": to_dict(cfg), "overrides": per_method,
         "rows": {m: {k: to_dict(r["resolved"][k]) for k in ("run", "model", "method", "train")}
                  for m, r in runs.items()}},
        standin=standin, data_fingerprint=None, wall_time_s=time.time() - start,
        extra={"figure": FIGURE, "rules": {m: RULES[m] for m in cfg.methods},
               "runs": {m: shown_path(r["run_dir"]) for m, r in runs.items()}, "shown": shown})
    paths["provenance"] = atomic_write_text(out / f"{FIGURE}_{cfg.table}.json",
                                            json.dumps(provenance, indent=2, default=str) + "\n")
    notes = ("Rows: anchors from the training set (black frame, class number above). Column groups: points of "
             "training; in each, the first positives the method mined for that anchor, green = same class as the "
             "anchor, red = another class, grey = a candidate the method's selection turned down. What 'mined' "
             "means per method:\n\n"
             + "\n".join(f"- `{m}`: {RULES[m]}" for m in cfg.methods)
             + "\n\nThe curves are each run's logged `pos_precision` (over the whole training set, per epoch).")
    return FigureResult(FIGURE, standin, figures, paths, tables={"precision": curves}, provenance=provenance,
                        notes=notes)


def mined_positives_grid(dataset, anchors: Sequence[int], runs: Sequence[Sequence[Mapping]], point_names: Sequence[str],
                         *, n_show: int, side: int, title: str, run_names: Optional[Sequence[str]] = None):
    """(figure, what it shows) of :func:`plot_mined_positives` from snapshots: for every anchor one row per run
    (``runs[k]`` = that run's snapshot dicts at the shown points, ``{'positives': {anchor: [...]}, 'rejected':
    {...}}``), named by ``run_names`` when given; images read from ``dataset`` and squared to ``side`` px."""
    labels = np.asarray(dataset.labels)

    def image(i: int):
        return thumbnail(dataset.load_image(i) if hasattr(dataset, "load_image") else dataset[i][0], side)

    rows = [(a, points) for a in anchors for points in runs]
    pos = [[p["positives"].get(a, [])[:n_show] for p in points] for a, points in rows]
    rej = [[p.get("rejected", {}).get(a, [])[: max(n_show - len(p["positives"].get(a, [])), 0)] for p in points]
           for a, points in rows]
    fig = plot_mined_positives([image(a) for a, _ in rows], labels[[a for a, _ in rows]].tolist(),
                               [[[image(j) for j in pt] for pt in row] for row in pos],
                               [[labels[pt].tolist() for pt in row] for row in pos], point_names=point_names,
                               row_names=[n for _ in anchors for n in run_names] if run_names else None,
                               n_show=n_show, title=title,
                               rejected_images=[[[image(j) for j in pt] for pt in row] for row in rej],
                               rejected_labels=[[labels[pt].tolist() for pt in row] for row in rej])
    return fig, {"points": list(point_names), "anchors": list(anchors), "positives": pos, "rejected": rej}


def run_positive_mining_notebook(namespace: Mapping[str, Any], *, progress: bool = True) -> FigureResult:
    """The notebook's one call: its parameters checked (unknown names refused), then the figures."""
    params = notebook_parameters(namespace)
    own = {k: params.pop(k) for k in ("methods", "table", "n_anchors", "n_points", "n_show", "params_dir",
                                      "method_params") if k in params}
    return positive_mining_figure(**own, progress=progress, **params)
