"""The report of the ISL paper's Figure 3 notebook: precision of the mined positives per epoch, one panel per set
size, geodesic (ISL's proxies) and Euclidean lines, with the paper's statement beside it (used by
``paper_isl_fig3``)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .figures import STANDIN_LABEL, FigureResult

STYLE = {"geodesic": dict(color="tab:green", marker="o", label="geodesic (ISL's GAN proxies)"),
         "euclidean": dict(color="tab:gray", marker="s", linestyle="--", label="Euclidean (closest samples)")}


PAPER_SAYS = ("Both distance measures reach a similar precision for the smaller positive set, while the geodesic "
              "distance is clearly above the Euclidean one for the larger set (the paper's Sec. 4.2.1; its "
              "figure's values are not stated in the text, so none are transcribed).")


def plot_precision(curves: pd.DataFrame, sizes: Sequence[int], *, standin: bool):
    fig = Figure(figsize=(4.2 * len(sizes), 3.4))
    axes = fig.subplots(1, len(sizes), squeeze=False)[0]
    for ax, k in zip(axes, sizes):
        for kind, style in STYLE.items():
            part = curves[(curves["set_size"] == k) & (curves["similarity"] == kind)].dropna()
            ax.plot(part["epoch"], 100 * part["precision"], **style)
        ax.set(title=f"positive set of size {k}", xlabel="epoch (backbone training)", ylabel="precision (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Precision of mined positives" + (f"\n{STANDIN_LABEL}" if standin else ""), fontsize=9)
    fig.tight_layout()
    return fig


def report(run, done: Mapping[str, Any], curves: pd.DataFrame, sizes: Sequence[int],
           params: Mapping[str, Any]) -> FigureResult:
    fig = plot_precision(curves, sizes, standin=run.standin)
    wide = curves.pivot_table(index="epoch", columns=["set_size", "similarity"], values="precision", dropna=False)
    wide.columns = [f"{kind}@{k}" for k, kind in wide.columns]
    saved = run.save({"precision": fig}, {"precision": curves}, trainings=[done], extra={"set_sizes": list(sizes)})
    cfg = done["row"].method_cfg
    notes = (f"**Paper** (text only): {PAPER_SAYS}\n\n"
             f"**Ours**: all training images as anchors after every backbone epoch; sets of size {list(sizes)} "
             f"(the paper's sizes are not in our copy of its text); ISL with {cfg.isl_rounds} rounds, "
             f"{cfg.isl_sampling_times} triplet(s) per proxy. Round 0 has no trained GAN, so no geodesic value. "
             + run.data_note())
    return FigureResult(name=run.table.name, standin=run.standin, figures={"precision": fig}, paths=saved["paths"],
                        tables={"precision per epoch": (100 * wide).round(1).reset_index()},
                        provenance=saved["provenance"], notes=notes)
