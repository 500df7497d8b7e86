"""The report of the ISL paper's Figure 4 notebook: kNN accuracy against each swept hyper-parameter (one panel a
sweep, the fixed value marked), the points' table and the paper's statements (used by ``paper_isl_fig4``)."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from matplotlib.figure import Figure

from .figures import STANDIN_LABEL, FigureResult

TITLES = {"threshold": "(a) confidence threshold", "region_size": "(b) region size R (cosine)",
          "sampling_times": "(c) sampling times"}


PAPER_SAYS = {
    "threshold": "a medium threshold gives the best accuracy; a low one lets unreliable proxies mine, a high one "
                 "leaves too few proxies",
    "region_size": "a medium region gives the best accuracy; a large one adds unreliable instances, a small one "
                   "too few",
    "sampling_times": "accuracy rises with the sampling times and barely after five, the paper's setting",
}


def plot_sweeps(points: pd.DataFrame, *, standin: bool) -> Figure:
    sweeps = list(dict.fromkeys(points["sweep"]))
    fig = Figure(figsize=(3.6 * len(sweeps), 3.3))
    axes = fig.subplots(1, len(sweeps), squeeze=False)[0]
    for ax, sweep in zip(axes, sweeps):
        part = points[points["sweep"] == sweep].sort_values("value")
        ax.plot(part["value"], part["knn_top1"], marker="o", color="tab:blue")
        fixed = part[part["fixed"]]
        ax.plot(fixed["value"], fixed["knn_top1"], "o", markersize=10, mfc="none", color="tab:red",
                label="fixed value")
        ax.set(title=TITLES[sweep], xlabel=part["parameter"].iloc[0], ylabel="kNN top-1 (%)")
        ax.set_xticks(part["value"].tolist())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("ISL's hyper-parameters, CIFAR-10" + (f"\n{STANDIN_LABEL}" if standin else ""), fontsize=9)
    fig.tight_layout()
    return fig


def report(run, fixed, points: pd.DataFrame, params: Mapping[str, Any]) -> FigureResult:
    fig = plot_sweeps(points, standin=run.standin)
    trainings = list(run._done.values())
    saved = run.save({"sweeps": fig}, {"sweeps": points}, trainings=trainings)
    cfg = fixed.method_cfg
    said = "\n".join(f"- {TITLES[s]}: {PAPER_SAYS[s]}." for s in dict.fromkeys(points["sweep"]))
    notes = (f"**Paper** (its text; the figure's values are not stated, so none are transcribed):\n{said}\n\n"
             f"**Ours**: fixed values threshold {cfg.isl_gate}, R {cfg.isl_radius}, sampling times "
             f"{cfg.isl_sampling_times}; {cfg.isl_rounds} ISL rounds; the metric is the weighted kNN top-1 at the end. "
             "`links_per_item` and `pos_precision` are the mined sets' size and precision at the end: where no "
             "link was mined the swept value could not change the training. " + run.data_note())
    shown = points.assign(knn_top1=points["knn_top1"].round(1), wall_s=points["wall_s"].round(1))
    return FigureResult(name=run.table.name, standin=run.standin, figures={"sweeps": fig}, paths=saved["paths"],
                        tables={"points": shown}, provenance=saved["provenance"], notes=notes)
