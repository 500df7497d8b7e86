"""The report of the Spreading paper's STL-10 notebook (Table 2): our rows beside the paper's, for both
classifiers, written with their provenance, and the kNN accuracy per epoch, labelled stand-in where it is (used
by ``paper_stl10``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..methods import METHODS
from ..paths import shown_path
from ..results import load_reference, side_by_side
from .figures import FigureResult, save_figure
from .paper_cifar_report import NOT_RUN, plot_knn_curves, write_rows
from .paper_isl_report import paired_table

METRICS = {"linear": "linear_top1", "kNN": "knn_top1"}  # reference metric -> our result key
LABELS = {"linear": "linear classifier", "kNN": "weighted kNN"}
OTHER_PAPER = "taken by the paper from [33] (another paper, another network)"


def tidy(result: Mapping[str, Any]) -> list[dict]:
    """Two tidy rows per result: the linear classifier's and the kNN classifier's accuracy on the embedding."""
    return [{"method": result["method"], "dataset": "stl10", "metric": metric, "value": float(result[key]),
             "setting": result["setting"], "epochs": result["epochs"]} for metric, key in METRICS.items()]


def table(name: str, results: Sequence[Mapping], standin: bool) -> pd.DataFrame:
    """One line per paper row and per row of ours: the paper's and our accuracy for both classifiers."""
    out = paired_table(side_by_side(name, [t for r in results for t in tidy(r)]), results, LABELS, standin)
    out = out.rename(columns={"setting": "training images"})
    ref = load_reference(name)
    elsewhere = set(ref.loc[ref["source"].str.contains("taken by the paper from [33]", regex=False), "method"])
    out["note"] = [OTHER_PAPER if m in elsewhere else "" if m in METHODS else NOT_RUN for m in out["method"]]
    return out


def report(name: str, results: Sequence[Mapping], *, standin: bool, size: str | None, base: Path,
           params: Mapping[str, Any]) -> FigureResult:
    for method in dict.fromkeys(r["method"] for r in results):
        write_rows(name, method, [r for r in results if r["method"] == method], standin, size, params, tidy=tidy)
    split = params.get("train_split") or "train"
    fig = plot_knn_curves(results, standin=standin, title=f"kNN accuracy per epoch, STL-10 (trained on {split})")
    png = save_figure(fig, base / "figures" / f"{name}_{split.replace('+', '_')}_knn_curve.png")
    curves = pd.DataFrame([{"row": r["row"], **p} for r in results for p in r["curve"]])
    images = ", ".join(f"{r['row']}: {r['train_images']}" for r in results if r["train_images"])
    where = f"stand-in (`{size}`): synthetic STL-10 in the real layout" if standin else "STL-10"
    notes = (f"Data: {where}; trained on `{split}` ({images or 'no training'} images), kNN over the labelled training "
             f"images. Paper: the Spreading paper (Ye et al. 2019), Table 2, from `results/reference/{name}.csv`; "
             f"its starred rows are taken from another paper. Ours, with provenance (settings, commit, data, times "
             f"per row): `{shown_path(base / name)}/`.")
    if standin:
        notes += (" Ours: a convnet4 at 32 px and a few CPU epochs on the stand-in, **not comparable with the "
                  "paper's numbers**; they show that each row trains and is scored by both classifiers.")
    return FigureResult(name=name, standin=standin, figures={"knn_curve": fig}, paths={"knn_curve": png},
                        tables={"Table 2": table(name, results, standin), "kNN per epoch": curves}, notes=notes)
