"""The report of the ISL paper's Table 1 notebook: our rows beside the paper's cells of the same dataset and
architecture, for both protocols, written with their provenance, and the kNN accuracy per epoch, labelled
stand-in where it is (used by ``paper_isl``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..paths import shown_path
from ..results import side_by_side
from .figures import FigureResult, save_figure
from .paper_cifar_report import plot_knn_curves, write_rows

METRICS = {"kNN": "knn_top1", "LC_conv5": "lc_top1"}  # reference metric -> our result key
LABELS = {"kNN": "weighted kNN / FC", "LC_conv5": "linear classifier / conv5"}
NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN"}


def tidy(result: Mapping[str, Any]) -> list[dict]:
    """Two tidy rows per result: the kNN accuracy on the embedding and the linear probe's on conv5."""
    return [{"method": result["method"], "dataset": result["dataset"], "metric": metric, "value": float(result[key]),
             "setting": result["setting"], "epochs": result["epochs"]} for metric, key in METRICS.items()]


def table(name: str, results: Sequence[Mapping], dataset: str, architecture: str, standin: bool) -> pd.DataFrame:
    """One line per row (the paper's of this dataset and architecture, and ours): paper and ours, per protocol."""
    sbs = side_by_side(name, [t for r in results for t in tidy(r)])
    sbs = sbs[(sbs["dataset"] == dataset) & (sbs["setting"].str.split("/").str[0] == architecture)]
    return paired_table(sbs, results, LABELS, standin)


def paired_table(sbs: pd.DataFrame, results: Sequence[Mapping], labels: Mapping[str, str],
                 standin: bool) -> pd.DataFrame:
    """One line per (method, setting) of ``side_by_side``'s rows: the paper's and our value of each metric in
    ``labels`` (metric -> column label), and our epochs."""
    ours = "ours, STAND-IN (%)" if standin else "ours (%)"
    epochs = {(r["method"], r["setting"]): r["epochs"] for r in results}
    lines = []
    for (method, setting), group in sbs.groupby(["method", "setting"], sort=False):
        cells = group.set_index("metric")
        line = {"paper row": group["paper_label"].max() or "(no paper number)", "method": method, "setting": setting}
        for metric, label in labels.items():
            line[f"paper {label}"] = cells["paper"].get(metric, float("nan"))
            line[f"{ours} {label}"] = round(cells["ours"].get(metric, float("nan")), 1)
        line["our epochs"] = epochs.get((method, setting))
        lines.append(line)
    out = pd.DataFrame(lines)
    out["our epochs"] = out["our epochs"].astype("Int64")
    return out


def report(name: str, results: Sequence[Mapping], *, dataset: str, architecture: str, standin: bool,
           size: str | None, base: Path, params: Mapping[str, Any]) -> FigureResult:
    for method in dict.fromkeys(r["method"] for r in results):
        write_rows(name, method, [r for r in results if r["method"] == method], standin, size, params, tidy=tidy)
    title = f"kNN accuracy per epoch of backbone training, {NAMES[dataset]}"
    fig = plot_knn_curves(results, standin=standin, title=title)
    png = save_figure(fig, base / "figures" / f"{name}_{dataset}_knn_curve.png")
    curves = pd.DataFrame([{"row": r["row"], **p} for r in results for p in r["curve"]])
    where = f"stand-in (`{size}`): synthetic {NAMES[dataset]} in the real layout" if standin else NAMES[dataset]
    networks = ", ".join(sorted({r["model"]["backbone"] for r in results}))
    notes = (f"Data: {where}. Paper: the ISL paper (Wang et al., ICCV 2021), Table 1, {architecture} rows, from "
             f"`results/reference/{name}.csv` (its baselines' numbers are not in our copy of the text). Ours "
             f"({networks}), with provenance (settings, commit, data, times per row): `{shown_path(base / name)}/`.")
    if standin:
        notes += (" Ours: a small network and a few CPU epochs on the stand-in, **not comparable with the paper's "
                  "numbers**; they show that each row trains and is scored by both protocols.")
    return FigureResult(name=name, standin=standin, figures={"knn_curve": fig}, paths={"knn_curve": png},
                        tables={"Table 1": table(name, results, dataset, architecture, standin),
                                "kNN per epoch": curves}, notes=notes)
