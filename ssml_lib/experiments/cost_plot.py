"""Table 10's figure: the thesis's GPU hours beside ours, one panel per dataset (log axis)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def plot_cost(table: pd.DataFrame, *, title: Optional[str] = None) -> Figure:
    """One panel per dataset, one row per method x init: the thesis's GPU hours and ours, as horizontal bars on
    a shared log axis (labels stay readable however many rows a dataset has). The legend lists only what is
    drawn; where the thesis's GPU hours share the axis with our CPU hours, the figure says so."""
    from matplotlib.patches import Patch

    datasets = list(dict.fromkeys(table["dataset"])) or [""]
    groups = {d: list(dict.fromkeys(zip(table.loc[table["dataset"] == d, "method"],
                                        table.loc[table["dataset"] == d, "init"]))) for d in datasets}
    most = max((len(g) for g in groups.values()), default=1)
    fig = Figure(figsize=(3.4 * len(datasets) + 0.6, 1.6 + 0.32 * most))
    axes = fig.subplots(1, len(datasets), squeeze=False, sharex=True)[0]
    colour = {"thesis": "0.6", "GPU hours": "tab:blue", "CPU hours": "tab:orange"}
    drawn: set[str] = set()
    for ax, dataset in zip(axes, datasets):
        part = table[table["dataset"] == dataset]
        y = np.arange(len(groups[dataset]))
        for j, (m, i) in enumerate(groups[dataset]):
            rows = part[(part["method"] == m) & (part["init"] == i)]
            paper = pd.to_numeric(rows["paper"], errors="coerce").max()
            ours = pd.to_numeric(rows["hours"], errors="coerce").max()
            unit = next(iter(rows["unit"].dropna()), "") if "unit" in rows else ""
            if np.isfinite(paper) and paper > 0:
                ax.barh(j - 0.2, paper, 0.4, color=colour["thesis"])
                drawn.add("thesis")
            if np.isfinite(ours) and ours > 0:
                ax.barh(j + 0.2, ours, 0.4, color=colour.get(unit, "tab:blue"))
                drawn.add(unit if unit in colour else "GPU hours")
        ax.set_yticks(y, [m if m == i else f"{m} ({i})" for m, i in groups[dataset]], fontsize=7)
        if len(y):
            ax.set_ylim(len(y) - 0.5, -0.5)  # the table's order, top to bottom
        ax.set_xscale("log")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="0.9", lw=0.5)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("hours (log scale)", fontsize=8)
    labels = {"thesis": "thesis: GPU hours (four A100s)", "GPU hours": "ours: GPU hours",
              "CPU hours": "ours: CPU hours (one process)"}
    handles = [Patch(color=colour[k], label=labels[k]) for k in ("thesis", "GPU hours", "CPU hours") if k in drawn]
    note = ("Thesis GPU hours and our CPU hours share one log axis: different units and machines, so compare "
            "rows within a colour, not bar heights across colours." if {"thesis", "CPU hours"} <= drawn else "")
    height = fig.get_figheight()  # the legend and the note sit below the panels, placed in inches
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, 0.02 / height))
    if note:
        fig.text(0.5, (0.3 if handles else 0.05) / height, note, ha="center", va="bottom", fontsize=7,
                 style="italic")
    if title:
        fig.suptitle(title, fontsize=10)
    bottom = (0.3 if handles else 0.0) + (0.25 if note else 0.0) + 0.05
    fig.tight_layout(rect=(0, bottom / height, 1, 1))
    return fig


__all__ = ["plot_cost"]
