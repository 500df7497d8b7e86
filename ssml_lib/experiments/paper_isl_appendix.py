"""The ISL paper's appendix Figure 1 (Wang et al., ICCV 2021, supplementary, Appendix C): the positives ISL mines
for a few anchors in successive rounds of training, framed green when they share the anchor's class and red
otherwise.

ISL is trained on CIFAR-10 (:mod:`.paper_isl_figs`) with the positive-mining snapshot of the thesis's figure
(:func:`~ssml_lib.experiments.mining_snapshots.snapshot_fn`: the anchor's affinity set A(i)) logged after every
backbone epoch; one column group per round from round 1 (round 0 mines nothing: its sets are empty), drawn by the
thesis figure's grid (:func:`~ssml_lib.experiments.positive_mining.mined_positives_grid`). The paper's top row is
LA (Zhuang et al. 2019), which ssml does not have, so it is not drawn; ``similarities: [euclidean, geodesic]``
adds a row of ISL's miner searching with the anchor itself (``isl_similarity: euclidean``), a conventional
neighbourhood-discovery rule in the same training, not LA. Labels are read for the frames only.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .mining_snapshots import SNAPSHOT_KEY, snapshot_fn
from .paper_isl_figs import COMMON_PARAMS, FigureRun, figure_table

TABLE = "paper_isl_appendix_mined_positives"
NAMES = {"geodesic": "ISL (GAN proxies)", "euclidean": "Euclidean (anchor)"}
# Stand-in: three rounds, so two of them mine (our choice, as Figure 3's).
APPENDIX = figure_table(TABLE, {"n_anchors": 3, "n_show": 4}, {"isl_rounds": 3})
NOTEBOOK_PARAMS = ("similarities", "n_anchors", "n_show", "network", *COMMON_PARAMS)


def round_points(history: Sequence[Mapping[str, Any]], epochs_per_round: int) -> list[dict]:
    """The snapshot of the first backbone epoch of every round from round 1 (A(i) changes only when a round's
    mining starts), as ``{'round', 'positives': {anchor: [...]}}``."""
    out = []
    for rec in history:
        snap = (rec.get("extra") or {}).get(SNAPSHOT_KEY)
        r, first = divmod(int(rec["epoch"]) - 1, epochs_per_round)
        if snap is not None and r >= 1 and first == 0:
            out.append({"round": r, "positives": {int(a): list(p) for a, p in snap.items()}})
    return out


def _similarities(value: Any) -> list[str]:
    from .paper_cifar import _as_rows

    names = _as_rows(value, NAMES) if value else ["geodesic"]
    if not names or any(s not in NAMES for s in names):
        raise ConfigError(f"similarities must name some of {', '.join(NAMES)}, got {value!r}.")
    return names


def run_paper_isl_appendix_notebook(params: Mapping[str, Any]):
    """The notebook's one call: ISL trained per similarity with the snapshots, then the grid and a count table."""
    from .figures import FigureResult
    from .positive_mining import mined_positives_grid

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}
    run = FigureRun(APPENDIX, {k: v for k, v in params.items() if k != "similarities"})
    n_anchors, n_show = int(run.figure_setting("n_anchors")), int(run.figure_setting("n_show"))
    if not 1 <= n_anchors <= len(run.train_set) or n_show < 1:
        raise ConfigError(f"n_anchors must lie in [1, {len(run.train_set)}] and n_show be >= 1.")
    anchors = sorted(np.random.default_rng(run.seed).choice(len(run.train_set), n_anchors, replace=False).tolist())
    sims, per_run, trainings = _similarities(params.get("similarities")), [], []
    for sim in sims:
        row = run.row({"isl_similarity": sim})
        done = run.train(row, snapshot_fn("isl", anchors))
        per_run.append(round_points(done["history"], row.train_cfg.epochs))
        trainings.append(done)
    rounds = [p["round"] for p in per_run[0]]
    if not rounds:
        raise ConfigError("ISL ran a single round, which mines nothing. Fix: isl_rounds >= 2.")
    labels = np.asarray(run.train_set.labels)
    fig, shown = mined_positives_grid(run.train_set, anchors, per_run, [f"round {r}" for r in rounds],
                                      n_show=n_show, side=64, run_names=[NAMES[s] for s in sims],
                                      title=f"Mined positives per round, CIFAR-10 ({'stand-in' if run.standin else 'real'})")
    counts = pd.DataFrame([{"anchor": a, "class": int(labels[a]), "similarity": s, "round": p["round"],
                            "mined": len(p["positives"].get(a, [])),
                            "same class": int((labels[p["positives"].get(a, [])] == labels[a]).sum())}
                           for s, points in zip(sims, per_run) for p in points for a in anchors])
    saved = run.save({"grid": fig}, {"counts": counts}, trainings=trainings, extra={"anchors": anchors,
                                                                                     "shown": shown})
    notes = ("Rows: anchors (black frame, class above); per round its first mined positives (A(i)), green = the "
             "anchor's class, red = another; 'none': nothing mined yet. The paper's LA row is not drawn (ssml has "
             "no LA). " + run.data_note())
    return FigureResult(name=TABLE, standin=run.standin, figures={"grid": fig}, paths=saved["paths"],
                        tables={"mined per anchor and round": counts}, provenance=saved["provenance"], notes=notes)
