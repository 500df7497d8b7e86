"""The ISL paper's appendix Figure 1 (Wang et al., ICCV 2021, supplementary, Appendix C): the positives ISL mines
for a few anchors in successive rounds of training, framed green when they share the anchor's class and red
otherwise.

ISL is trained on CIFAR-10 (:mod:`.paper_isl_figs`) once, and after every backbone epoch two rows are logged per
anchor: ``isl``, the positive-mining snapshot of the thesis's figure
(:func:`~ssml_lib.experiments.mining_snapshots.snapshot_fn`: the anchor's affinity set A(i), what ISL mined), and
``euclidean``, the anchor's nearest bank entries at the same point (the conventional neighbourhood-discovery
rule, read from the same network: no training of its own). The paper's top row is LA (Zhuang et al. 2019), which
ssml does not have; the Euclidean row stands where it was, and is not LA. One column group per round from round 1
(round 0 mines nothing: its sets are empty), drawn by the thesis figure's grid
(:func:`~ssml_lib.experiments.positive_mining.mined_positives_grid`). Labels are read for the frames only.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from .mining_snapshots import SNAPSHOT_KEY, snapshot_fn
from .paper_isl_figs import COMMON_PARAMS, FigureRun, figure_table

TABLE = "paper_isl_appendix_mined_positives"
EUCLIDEAN_KEY = "euclidean_neighbours"
ROW_KEYS = {"euclidean": EUCLIDEAN_KEY, "isl": SNAPSHOT_KEY}
NAMES = {"euclidean": "Euclidean (nearest)", "isl": "ISL (mined A(i))"}
# Stand-in: three rounds, so two of them mine (our choice, as Figure 3's).
APPENDIX = figure_table(TABLE, {"n_anchors": 3, "n_show": 4}, {"isl_rounds": 3})
NOTEBOOK_PARAMS = ("n_anchors", "n_show", "network", *COMMON_PARAMS)


def appendix_eval(anchors: Sequence[int], n_show: int):
    """The ``epoch_eval``: ISL's A(i) of every anchor and its ``n_show`` nearest bank entries (self excluded)."""
    isl_rule, idx = snapshot_fn("isl", anchors), torch.as_tensor(list(anchors), dtype=torch.int64)

    @torch.no_grad()
    def epoch_eval(method, ctx) -> dict:
        out = isl_rule(method, ctx)
        bank = method.memory.features.float()
        a = idx.to(bank.device)
        sims = bank[a] @ bank.T
        sims[torch.arange(a.numel(), device=bank.device), a] = float("-inf")
        top = sims.topk(min(n_show, bank.shape[0] - 1), dim=1).indices.cpu()
        out[EUCLIDEAN_KEY] = {str(int(i)): row.tolist() for i, row in zip(idx, top)}
        return out

    return epoch_eval


def round_points(history: Sequence[Mapping[str, Any]], epochs_per_round: int, key: str = SNAPSHOT_KEY) -> list[dict]:
    """The ``key`` snapshot of the last backbone epoch of every round from round 1 (A(i) changes when a round's
    mining starts), as ``{'round', 'positives': {anchor: [...]}}``."""
    out = []
    for rec in history:
        snap = (rec.get("extra") or {}).get(key)
        r, within = divmod(int(rec["epoch"]) - 1, epochs_per_round)
        if snap is not None and r >= 1 and within == epochs_per_round - 1:
            out.append({"round": r, "positives": {int(a): list(p) for a, p in snap.items()}})
    return out


def run_paper_isl_appendix_notebook(params: Mapping[str, Any]):
    """The notebook's one call: ISL trained with the snapshots, then the grid and a count table."""
    from .figures import FigureResult
    from .positive_mining import mined_positives_grid

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}
    run = FigureRun(APPENDIX, params)
    n_anchors, n_show = int(run.figure_setting("n_anchors")), int(run.figure_setting("n_show"))
    if not 1 <= n_anchors <= len(run.train_set) or n_show < 1:
        raise ConfigError(f"n_anchors must lie in [1, {len(run.train_set)}] and n_show be >= 1.")
    anchors = sorted(np.random.default_rng(run.seed).choice(len(run.train_set), n_anchors, replace=False).tolist())
    row = run.row()
    done = run.train(row, appendix_eval(anchors, n_show))
    per_row = {kind: round_points(done["history"], row.train_cfg.epochs, key) for kind, key in ROW_KEYS.items()}
    rounds = [p["round"] for p in per_row["isl"]]
    if not rounds:
        raise ConfigError("ISL ran a single round, which mines nothing. Fix: isl_rounds >= 2.")
    labels = np.asarray(run.train_set.labels)
    fig, shown = mined_positives_grid(run.train_set, anchors, list(per_row.values()), [f"round {r}" for r in rounds],
                                      n_show=n_show, side=64, run_names=[NAMES[k] for k in per_row],
                                      title=f"Positives per round, CIFAR-10 ({'stand-in' if run.standin else 'real'})")
    counts = pd.DataFrame([{"anchor": a, "class": int(labels[a]), "row": kind, "round": p["round"],
                            "positives": len(p["positives"].get(a, [])),
                            "same class": int((labels[p["positives"].get(a, [])] == labels[a]).sum())}
                           for kind, points in per_row.items() for p in points for a in anchors])
    saved = run.save({"grid": fig}, {"counts": counts}, trainings=[done], extra={"anchors": anchors, "shown": shown})
    notes = ("Rows: per anchor (black frame, class above), the Euclidean row (its nearest bank entries) and ISL's "
             "row (its mined set A(i)); per round the first positives, green = the anchor's class, red = another; "
             "'none': nothing mined. The paper's LA row is not drawn (ssml has no LA). " + run.data_note())
    return FigureResult(name=TABLE, standin=run.standin, figures={"grid": fig}, paths=saved["paths"],
                        tables={"positives per anchor and round": counts}, provenance=saved["provenance"],
                        notes=notes)
