"""What each method mines, read with the method's own rule after every epoch, and read back from the run's logs.

``snapshot_fn(method, anchors)`` is an ``eval_fn`` for ``fit``: it logs, in the epoch's ``log.jsonl`` line, the
positives the method mines for the chosen anchors (``mined_positives``: anchor index -> training-set indices)
and, where the method selects among candidates, what it turned down (``rejected_candidates``).
:func:`read_snapshots` and :func:`read_precision_curves` read finished runs back (the curves are each run's
logged ``pos_precision``, against epochs counted across stages). :data:`RULES` says what "mined" means per
method. Labels are used for display and precision only, never for training.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from ..errors import ConfigError

SNAPSHOT_KEY = "mined_positives"
REJECTED_KEY = "rejected_candidates"  # methods that select among candidates: what the selection turned down
RULES = {
    "spreading": "the other view: the partner whose augmented view is the anchor's positive (the anchor itself, "
                 "i.e. its second augmentation, unless nn_positive_prob > 0 swaps in its 1-NN)",
    "stml": "the anchor's neighbour list the epoch's batches were built from (its num_neighbors - 1 nearest "
            "images by the student's g on the no-augmentation view, mined at the epoch start)",
    "stml_xbm": "as stml: the anchor's neighbour list of the epoch's batches (memory rows, mined per step, are "
                "not shown)",
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


MINING_RULES: dict[str, Callable] = {"spreading": _spreading, "stml": _stml, "stml_xbm": _stml, "insclr": _insclr,
                                     "isl": _isl, "mom": _mom}


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


__all__ = ["MINING_RULES", "REJECTED_KEY", "RULES", "SNAPSHOT_KEY", "pick_points", "read_precision_curves",
           "read_snapshots", "snapshot_fn", "stage_logs"]
