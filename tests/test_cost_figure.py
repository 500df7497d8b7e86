"""Table 10's figure as a reader sees it: readable row labels, a legend that lists only what is drawn, and a
stated warning where the thesis's GPU hours share the log axis with our CPU hours."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ssml_lib.experiments.cost import plot_cost


def _table(unit: str) -> pd.DataFrame:
    rows = []
    for dataset in ("cub200", "cars196"):
        for method, init, paper in (("spreading", "pretrained", 4.0), ("stml", "scratch", 12.0),
                                    ("isl", "pretrained", np.nan), ("pretrained", "pretrained", np.nan)):
            rows.append(dict(method=method, init=init, dataset=dataset, paper=paper, hours=0.05, unit=unit))
    return pd.DataFrame(rows)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def _legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_rows_are_labelled_once_each_and_horizontally():
    fig = plot_cost(_table("CPU hours"))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["spreading (pretrained)", "stml (scratch)", "isl (pretrained)", "pretrained"]
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())
    assert ax.get_xscale() == "log" and "log" in ax.get_xlabel()


def test_cpu_hours_beside_thesis_gpu_hours_are_flagged_and_the_legend_lists_only_drawn_bars():
    fig = plot_cost(_table("CPU hours"))
    assert _legend_labels(fig) == ["thesis: GPU hours (four A100s)", "ours: CPU hours (one process)"]
    assert any("share one log axis" in t for t in _texts(fig))


def test_gpu_runs_need_no_warning_and_show_no_cpu_entry():
    fig = plot_cost(_table("GPU hours"))
    assert _legend_labels(fig) == ["thesis: GPU hours (four A100s)", "ours: GPU hours"]
    assert not any("share one log axis" in t for t in _texts(fig))


def test_only_the_thesis_column_when_nothing_of_ours_ran():
    table = _table("GPU hours").assign(hours=np.nan, unit=None)
    assert _legend_labels(plot_cost(table)) == ["thesis: GPU hours (four A100s)"]
