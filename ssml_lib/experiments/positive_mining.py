"""Positive mining over training: the positives each method mines for a few anchors, and precision curves.

The methods keep only the current epoch's mining state, so each method is trained here (its table row's
parameters, in its own run folder ``runs/<standin|real>/positive_mining/<table>/``) with an ``eval_fn`` that,
after every epoch, reads "what the method mines" for the chosen anchors with the method's own rule and logs it
in the epoch's ``log.jsonl`` line (key ``mined_positives``: anchor index -> training-set indices). A finished
run is read back from its logs. What is shown per method is :data:`RULES` (also printed in the notebook).

The precision curves are each run's logged ``pos_precision`` (the method's own diagnostic over the whole
training set, see ssml_lib.methods), against epochs counted across stages. Labels are used for display and
precision only, never for training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from ..config import Config, load_config, notebook_parameters, to_dict
from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import shown_path
from ..provenance import collect_provenance
from .figures import (DISPLAY_NAMES, FigureResult, data_label, figures_dir, plot_mined_positives,
                      plot_precision_curves, save_figure, thumbnail)

FIGURE = "positive_mining"
SNAPSHOT_KEY = "mined_positives"
REJECTED_KEY = "rejected_candidates"  # methods that select among candidates: what the selection turned down
RULES = {
    "spreading": "the other view: the partner whose augmented view is the anchor's positive (the anchor itself, "
                 "i.e. its second augmentation, unless nn_positive_prob > 0 swaps in its 1-NN)",
    "stml": "the anchor's neighbour list the epoch's batches were built from (its num_neighbors - 1 nearest "
            "images by the student's g on the no-augmentation view, mined at the epoch start)",
    "insclr": "the anchor's top num_neighbors candidates of the stage's candidate pool that pass in-batch "
              "selection (no-augmentation cosine to the anchor >= the stage's threshold) with the model at the "
              "epoch end; the candidates the selection turned down follow in grey frames; memory-bank positives "
              "of the impr stage are not shown",
    "isl": "the anchor's affinity set A(i) (links mined by the GAN proxies; empty in round 0)",
    "mom": "the anchor's hard-positive pool P+ (manifold neighbours that are not Euclidean neighbours) computed "
           "with the method's rule on the epoch-end embedding (MOM trains only on graph-mode anchors)",
}


# A rule returns the positives of every anchor, or (positives, rejected candidates) where the method selects.

def _spreading(method, ctx, anchors: torch.Tensor) -> list[list[int]]:
    if not method.partner.numel():  # no NN swap: the positive is the anchor's own second view
        return anchors[:, None].tolist()
    return method.partner.cpu()[anchors][:, None].tolist()


def _stml(method, ctx, anchors: torch.Tensor) -> list[list[int]]:
    return method.neighbours.cpu()[anchors, 1:].tolist()


@torch.no_grad()
def _insclr(method, ctx, anchors: torch.Tensor) -> tuple[list[list[int]], list[list[int]]]:
    cand = method.pool.cpu()[anchors, : method.cfg.num_neighbors]
    threshold = method._threshold()
    if threshold is None:
        return cand.tolist(), [[] for _ in cand]
    items = torch.cat([anchors[:, None], cand], 1)
    emb = ctx.embed(Subset(ctx.datasets["noaug"], items.reshape(-1).tolist())).cpu().reshape(*items.shape, -1)
    cos = (emb[:, :1] * emb[:, 1:]).sum(-1)
    ok = cos >= threshold
    return [row[k].tolist() for row, k in zip(cand, ok)], [row[~k].tolist() for row, k in zip(cand, ok)]


def _isl(method, ctx, anchors: torch.Tensor) -> list[list[int]]:
    table = method.affinity.table.cpu()[anchors]
    return [row[row >= 0].tolist() for row in table]


@torch.no_grad()
def _mom(method, ctx, anchors: torch.Tensor) -> list[list[int]]:
    from ..mining import mom_pools
    from ..models import l2_normalize

    cfg = method.cfg
    with method.embedding_output("f" if cfg.mom_features == "embedding" else "features"):
        feats = l2_normalize(ctx.embed(ctx.datasets["noaug"]))
    pools = mom_pools(feats, anchors.to(feats.device), cfg.mom_k, graph_k=cfg.mom_graph_k, power=cfg.mom_power,
                      alpha=cfg.mom_alpha, iterations=cfg.mom_cg_iterations)
    return [row[ok].tolist() for row, ok in zip(pools.positives.cpu(), pools.positive_mask.cpu())]


MINING_RULES: dict[str, Callable] = {"spreading": _spreading, "stml": _stml, "insclr": _insclr, "isl": _isl,
                                     "mom": _mom}


def snapshot_fn(method_name: str, anchors) -> Callable:
    """An ``eval_fn`` for ``fit``: ``{'mined_positives': {anchor: [indices]}}`` by the method's own rule."""
    rule = MINING_RULES[method_name]
    idx = torch.as_tensor(np.asarray(anchors), dtype=torch.int64)

    def eval_fn(method, ctx) -> dict:
        out = rule(method, ctx, idx)
        positives, rejected = out if isinstance(out, tuple) else (out, None)
        rec = {SNAPSHOT_KEY: {str(int(a)): [int(p) for p in pos] for a, pos in zip(idx, positives)}}
        if rejected is not None:
            rec[REJECTED_KEY] = {str(int(a)): [int(p) for p in rej] for a, rej in zip(idx, rejected)}
        return rec

    return eval_fn


# ---------------------------------------------------------------- reading runs back


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def stage_logs(run_dir: str | Path) -> list[tuple[str, list[dict]]]:
    """``(stage, records)`` of every stage folder with a ``log.jsonl``, in schedule order (``stage.json``'s
    index where the stage finished, else natural name order: cycle2 before cycle10)."""
    from ..engine import read_log

    run_dir = Path(run_dir)
    stages = [p.parent for p in run_dir.glob("*/log.jsonl")]
    if (run_dir / "log.jsonl").is_file():  # a single fit written straight into the folder
        stages.append(run_dir)

    def order(d: Path):
        rec = d / "stage.json"
        index = json.loads(rec.read_text(encoding="utf-8")).get("index") if rec.is_file() else None
        return (index if isinstance(index, int) else 10**6, _natural(d.name))

    return [(d.name if d != run_dir else "train", read_log(d / "log.jsonl")) for d in sorted(stages, key=order)]


def _number(v: Any) -> float:
    try:
        return float(v)  # None -> TypeError; "nan" (how the log writes NaN) -> nan
    except (TypeError, ValueError):
        return math.nan


def read_precision_curves(run_dirs: Mapping[str, str | Path]) -> pd.DataFrame:
    """One row per logged epoch of each method's run: method, stage, stage_index, epoch (1-based, within the
    stage), cum_epoch (1-based, counted across stages), pos_precision (NaN where the log has none)."""
    rows = []
    for method, run_dir in run_dirs.items():
        if not Path(run_dir).is_dir():
            raise ConfigError(f"run folder {run_dir} of {method!r} does not exist. Fix: train the method first, "
                              "or point at runs/<standin|real>/<table>/<method>-<hash>.")
        cum = 0
        for s, (stage, records) in enumerate(stage_logs(run_dir)):
            for rec in records:
                cum += 1
                rows.append({"method": method, "stage": stage, "stage_index": s, "epoch": int(rec["epoch"]) + 1,
                             "cum_epoch": cum, "pos_precision": _number(rec.get("pos_precision"))})
    return pd.DataFrame(rows, columns=["method", "stage", "stage_index", "epoch", "cum_epoch", "pos_precision"])


def read_snapshots(run_dir: str | Path) -> list[dict]:
    """The logged ``mined_positives`` of a run: ``{'stage', 'epoch', 'cum_epoch', 'positives'}`` per epoch."""
    out, cum = [], 0
    for stage, records in stage_logs(run_dir):
        for rec in records:
            cum += 1
            if SNAPSHOT_KEY in rec:
                out.append({"stage": stage, "epoch": int(rec["epoch"]) + 1, "cum_epoch": cum,
                            "positives": {int(a): list(p) for a, p in rec[SNAPSHOT_KEY].items()},
                            "rejected": {int(a): list(p) for a, p in (rec.get(REJECTED_KEY) or {}).items()}})
    return out


def pick_points(n_total: int, n_points: int) -> list[int]:
    """``n_points`` evenly spaced positions of ``n_total`` (first and last included, no repeats)."""
    if n_total <= 0:
        return []
    return sorted(set(np.linspace(0, n_total - 1, min(n_points, n_total)).round().astype(int).tolist()))


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
        ds, labels = r["train_set"], np.asarray(r["train_set"].labels)
        side = max(r["resolved"]["run"].data.image_size, 64) if standin else 128
        anchors = [int(a) for a in r["anchors"]]
        multi = len({s["stage"] for s in snaps}) > 1
        names = [f"{p['stage']} ep {p['epoch']}" if multi else f"epoch {p['epoch']}" for p in points]
        pos = [[p["positives"][a][: cfg.n_show] for p in points] for a in anchors]
        rej = [[p["rejected"].get(a, [])[: max(cfg.n_show - len(p["positives"][a]), 0)] for p in points]
               for a in anchors]
        fig = plot_mined_positives([thumbnail(ds.load_image(a), side) for a in anchors], labels[anchors].tolist(),
                                   [[[thumbnail(ds.load_image(j), side) for j in pt] for pt in row] for row in pos],
                                   [[labels[pt].tolist() for pt in row] for row in pos], point_names=names,
                                   n_show=cfg.n_show, title=f"{DISPLAY_NAMES.get(m, m)} (`{m}`): mined positives "
                                                            f"on {cfg.table} ({data_label(standin)})",
                                   rejected_images=[[[thumbnail(ds.load_image(j), side) for j in pt] for pt in row]
                                                    for row in rej],
                                   rejected_labels=[[labels[pt].tolist() for pt in row] for row in rej])
        figures[m], shown[m] = fig, {"points": names, "anchors": anchors, "positives": pos, "rejected": rej}
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


def run_positive_mining_notebook(namespace: Mapping[str, Any], *, progress: bool = True) -> FigureResult:
    """The notebook's one call: its parameters checked (unknown names refused), then the figures."""
    params = notebook_parameters(namespace)
    own = {k: params.pop(k) for k in ("methods", "table", "n_anchors", "n_points", "n_show", "params_dir",
                                      "method_params") if k in params}
    return positive_mining_figure(**own, progress=progress, **params)
