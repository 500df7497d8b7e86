"""The report of the Spreading paper's CIFAR-10 notebook: our rows beside the paper's Table 1, written with their
provenance, and Figure 3 (kNN accuracy per epoch), labelled stand-in where it is (used by ``paper_cifar``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..paths import shown_path
from ..provenance import collect_provenance
from ..results import load_results, side_by_side, write_results
from .figures import STANDIN_LABEL, FigureResult, save_figure

NOT_RUN = "the paper's number only: not a method of ssml_lib"


def _tidy(result: Mapping[str, Any]) -> dict:
    return {"method": result["method"], "dataset": "cifar10", "metric": "kNN", "value": float(result["knn_top1"]),
            "setting": result["setting"], "epochs": result["epochs"]}


def write_rows(table: str, method: str, results: Sequence[Mapping], standin: bool, size: str | None,
               params: Mapping[str, Any], tidy: Callable[[Mapping], list[dict]] = lambda r: [_tidy(r)]) -> None:
    """``<method>.csv/.json`` in the table's result folder; rows of this method's other settings, datasets or
    metrics (e.g. plain and hard triplet, trained by separate calls) are kept."""
    mine = pd.DataFrame([t for r in results for t in tidy(r)])
    keys = ["dataset", "metric", "setting"]
    try:
        old = load_results(table, standin=standin, size=size)
        old = old[old["method"] == method]
        old = old[~old[keys].apply(tuple, axis=1).isin(set(mine[keys].apply(tuple, axis=1)))]
    except Exception:  # noqa: BLE001 - no earlier results, or unreadable ones: start afresh
        old = pd.DataFrame()
    keep = [c for c in ("dataset", "metric", "value", "setting", "epochs") if c in old.columns]
    rows = pd.concat([old[keep], mine], ignore_index=True) if len(old) else mine
    prov = collect_provenance({"run": {"data": {"standin_size": size}}, "notebook": dict(params)}, standin=standin,
                              data_fingerprint=None, wall_time_s=sum(r["wall_s"] for r in results),
                              extra={"rows": {r["row"]: {k: v for k, v in r.items() if k != "row"} for r in results}})
    write_results(table, method, rows.drop(columns=["method"], errors="ignore"), prov)


def plot_knn_curves(results: Sequence[Mapping], *, standin: bool,
                    title: str = "Figure 3: kNN accuracy per epoch, CIFAR-10") -> Figure:
    """Figure 3: weighted kNN top-1 accuracy (%) against the epoch, one line per row (epoch 0: untrained)."""
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    for i, r in enumerate(results):
        pts = [(p["epoch"], p["knn_top1"]) for p in r["curve"] if p.get("knn_top1") is not None]
        if len(pts) == 1:  # an untrained row (RandomCNN): its one value as a level
            ax.axhline(pts[0][1], color=f"C{i}", linestyle="--", linewidth=1.2, label=f"{r['row']} (untrained)")
            continue
        ax.plot(*zip(*pts), marker="os^Dv"[i % 5], markersize=4, label=r["row"], color=f"C{i}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0: before training)")
    ax.set_ylabel("kNN accuracy (%)")
    ax.set_title(title + (f"\n{STANDIN_LABEL}" if standin else ""),
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(name: str, results: Sequence[Mapping], standin: bool) -> pd.DataFrame:
    """Paper beside ours, one line per paper row (and per row of ours the paper lacks)."""
    sbs = side_by_side(name, [_tidy(r) for r in results])
    epochs = {(r["method"], r["setting"]): r["epochs"] for r in results}
    out = pd.DataFrame({
        "paper row": sbs["paper_label"].fillna(""), "method": sbs["method"], "setting": sbs["setting"],
        "paper kNN (%)": sbs["paper"], ("ours, STAND-IN (%)" if standin else "ours (%)"): sbs["ours"].round(1),
        "our epochs": pd.array([epochs.get((m, s)) for m, s in zip(sbs["method"], sbs["setting"])], dtype="Int64")})
    from ..methods import METHODS

    out["note"] = ["" if m in METHODS else NOT_RUN for m in out["method"]]
    return out


def report(name: str, results: Sequence[Mapping], *, standin: bool, size: str | None, base: Path,
           params: Mapping[str, Any], paper_table: str = "Table 1", paper_figure: str = "Figure 3") -> FigureResult:
    """Write every row, draw the per-epoch curves (``paper_figure``, or ours only where it is "") and return the
    table beside the paper's ``paper_table`` with the curves' values."""
    for method in dict.fromkeys(r["method"] for r in results):
        write_rows(name, method, [r for r in results if r["method"] == method], standin, size, params)
    key = "fig" + paper_figure.split()[-1] if paper_figure else "curves"
    title = (f"{paper_figure}: kNN accuracy per epoch, CIFAR-10" if paper_figure
             else f"kNN accuracy per epoch, CIFAR-10 (rows of {paper_table}; not a figure of the paper)")
    fig = plot_knn_curves(results, standin=standin, title=title)
    png = save_figure(fig, base / "figures" / f"{name}_{key}.png")
    curves = pd.DataFrame([{"row": r["row"], **p} for r in results for p in r["curve"]])
    where = "stand-in (`" + str(size) + "`): synthetic CIFAR-10 in the real layout" if standin else "real CIFAR-10"
    shown = f"{paper_table} and {paper_figure}" if paper_figure else paper_table
    notes = (f"Data: {where}. Paper: the Spreading paper (Ye et al. 2019), {shown} (ResNet18, 200 "
             f"epochs, weighted kNN with k = 200), from `results/reference/{name}.csv`. Ours, with provenance "
             f"(settings, commit, data, times per row): `{shown_path(base / name)}/`.")
    if standin:
        notes += (" Ours: a convnet4 and a few CPU epochs on the stand-in, **not comparable with the paper's "
                  "numbers**; they show that each row trains and how its kNN accuracy moves per epoch.")
    return FigureResult(name=name, standin=standin, figures={key: fig}, paths={key: png},
                        tables={paper_table: table(name, results, standin),
                                f"{paper_figure or 'kNN accuracy'} (per epoch)": curves}, notes=notes)
