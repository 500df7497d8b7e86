"""The InsCLR paper's mining-precision curves (§4.2, "Mining accuracy at training"; plots in its supplement).

Precision of positive mining = true positives mined / all mined pseudo positives, where a mined positive is
"true" when it shares its anchor's ground-truth class (labels are read for this record only; the loss never
sees them). The paper reports it along training for the positives kept in the mini-batch (in-batch selection)
and for those mined in the memory bank, and finds both rise gradually.

The run is the full method, Table 1 row D's settings (at paper scale three base cycles, then the impr cycle
with in-batch selection and memory mining; on the stand-in one base cycle and the impr cycle, to keep the
notebook's default run short), with ``precision_log_every`` set, so each cycle's ``log.jsonl`` holds the counts
per window of steps (``precision_trace``). The curves are read back from those logs: x = training step counted
over the cycles, one line for the in-batch positives and one for the memory positives (impr cycle only).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

import pandas as pd

from ..config import notebook_parameters, read_params_file
from ..errors import ConfigError
from ..paths import REPO_ROOT
from .paper_insclr_ablations import BASE_TABLE, ROWS, TABLE1, layer_settings
from .paper_insclr_ablations_run import run_settings_row
from .row_refusals import PAPER_ROW
from .runner import RowResult

FIGURE = "paper_insclr_mining_precision"
ROW = "d"  # the full method
PAPER_EVERY = 1000  # our choice: 60 points a 60k-step base cycle
STANDIN_EVERY = 1  # stand-in: a point per step (the tiny cycles are 2 steps)
STANDIN_STAGES = ("base", "impr")  # stand-in: the full method's last base cycle and its impr cycle


def precision_curves(run_dir: str | Path) -> pd.DataFrame:
    """One row per logged window of every cycle under ``run_dir`` (``cycle<i>_<kind>/log.jsonl``): cycle,
    kind, step (counted over the cycles), the window's counts, and the in-batch / memory precision (NaN where
    nothing was mined)."""
    root = Path(run_dir)
    root = root if root.is_absolute() else REPO_ROOT / root
    cycles = sorted((p for p in root.glob("cycle*_*") if (p / "log.jsonl").is_file()),
                    key=lambda p: int(p.name[5:].split("_")[0]))
    if not cycles:
        raise ConfigError(f"no cycle logs under {root}. Fix: train with precision_log_every set first.")
    rows, offset = [], 0
    for folder in cycles:
        last = 0
        for line in (folder / "log.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for step, hits, total, mem_hits, mem_total in record.get("precision_trace", []):
                rows.append({"cycle": folder.name, "kind": folder.name.split("_", 1)[1], "step": offset + step,
                             "batch_hits": hits, "batch_positives": total, "memory_hits": mem_hits,
                             "memory_positives": mem_total})
            last = max(last, int(record.get("step", 0)))
        offset += last
    if not rows:
        raise ConfigError(f"the logs under {root} hold no precision_trace. Fix: -p precision_log_every 1.")
    df = pd.DataFrame(rows)
    df["batch_precision"] = df["batch_hits"] / df["batch_positives"].where(df["batch_positives"] > 0)
    df["memory_precision"] = df["memory_hits"] / df["memory_positives"].where(df["memory_positives"] > 0)
    return df


def run_mining_precision(params_file: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None, *,
                         progress: bool = True) -> tuple[RowResult, pd.DataFrame]:
    """Train and evaluate the full method with the precision log on; return the row and its curves."""
    from .row_params import resolve_params

    row = ROWS[TABLE1][ROW]
    spec = replace(row, settings={k: v for k, v in row.settings.items() if k != "insclr_stages"})
    values = {**(read_params_file(params_file) if params_file else {}), **dict(overrides or {})}
    paper_row = values.pop(PAPER_ROW, None)
    if paper_row is not None and (paper_row != f"{TABLE1}/{ROW}" or values.get("data_root") is None):
        raise ConfigError(f"use params/{TABLE1}/{ROW}.yaml (the full method) with -p data_root /data.")
    if values.get("data_root") is None:
        values.setdefault("precision_log_every", STANDIN_EVERY)
        values.setdefault("insclr_stages", list(STANDIN_STAGES))
    else:
        values.setdefault("precision_log_every", PAPER_EVERY)
    resolved = resolve_params(BASE_TABLE, None, layer_settings(FIGURE, spec, values, "use the full method"))
    result = run_settings_row(FIGURE, ROW, spec, resolved, params_file, (ROW,), progress=progress)
    return result, precision_curves(result.info["training"]["out_dir"])


def run_mining_precision_notebook(namespace: Mapping[str, Any], *, progress: bool = True):
    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    return run_mining_precision(params.pop("params_file", None), params, progress=progress)


def plot_precision(curves: pd.DataFrame, *, standin: bool = False):
    """Precision of the mined positives against the training step: in-batch and memory, cycles marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(curves["step"], 100 * curves["batch_precision"], marker=".", label="in-batch positives")
    mem = curves.dropna(subset=["memory_precision"])
    if not mem.empty:
        ax.plot(mem["step"], 100 * mem["memory_precision"], marker=".", label="memory positives")
    for _, part in curves.groupby("cycle", sort=False):
        ax.axvline(part["step"].min() - 0.5, color="grey", lw=0.5)
        ax.annotate(part["kind"].iloc[0], (part["step"].min(), 1), xycoords=("data", "axes fraction"),
                    va="top", fontsize=8, color="grey")
    ax.set_xlabel("training step (over the cycles)")
    ax.set_ylabel("precision of mined positives, %")
    ax.set_title("Mining precision along training" + (" (STAND-IN DATA)" if standin else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_mining_precision(out) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    result, curves = out
    display(plot_precision(curves, standin=result.standin))
    plt.close("all")
    display(curves.groupby(["cycle", "kind"], sort=False)[["batch_precision", "memory_precision"]].mean())
    display(Markdown("Mean precision per cycle above (windows averaged). The paper: both precisions rise "
                     "gradually along training (its plots are in its supplement; no values are printed). "
                     + ("**STAND-IN DATA**: a few CPU steps on synthetic data; not comparable with the paper."
                        if result.standin else "")))


__all__ = ["FIGURE", "plot_precision", "precision_curves", "run_mining_precision", "run_mining_precision_notebook",
           "show_mining_precision"]
