"""Table 10: the compute cost of every recorded run, beside the thesis's GPU hours.

Every provenance record of a table row under ``results/`` (real data) and ``results/standin/`` (stand-in) is a
row: method x training dataset x initialisation (from the table it filled), the device, and the cost in device
hours = wall time x devices:

- the row's wall time outside training (data checks, evaluation) on one device, plus
- its training time x the training world size. The training time is the larger of the row's own fit time and
  the stages' recorded training times (``stage.json``), so a row whose training was done before (e.g. under
  torchrun by ``run_table --gpus N``, then loaded by the notebook) still counts it; the world size is read from
  the stages' provenance files (1 where the run folder is not on disk).

GPU runs are in GPU hours; CPU runs in CPU hours of the process(es) (the device column says how many cores the
machine had) and are labelled so. The thesis's numbers (``results/reference/table10_cost.csv``) are wall-clock
on "a four GPU NVIDIA-A100 system"; whether they count four GPUs is not stated (results/reference/README.md),
so they are shown as printed, not rescaled. Stand-in and real records never share a file.

Beside them, a projected column: the GPU hours of each thesis row's training steps at paper scale on the GPU
the method benchmark measured (:mod:`.cost_projection`), labelled as a projection.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import results_dir, shown_path
from ..results import results_base
from ..provenance import collect_provenance
from ..results import load_reference
from .cost_plot import plot_cost
from .cost_projection import projection, projection_note
from .figures import FigureResult, data_label, save_figure
from .tables import TABLES

TABLE = "table10_cost"
_SKIPPED_FOLDERS = {"reference", "executed", "figures", "benchmarks", TABLE}  # no row records in these
COLUMNS = ["table", "method", "dataset", "init", "data", "device", "devices", "unit", "wall_h", "hours", "train_h",
           "timestamp", "record"]


def _row_fields(rec: Any) -> Optional[dict]:
    """``params.run`` of a table row's provenance record, or None for any other JSON."""
    if not isinstance(rec, Mapping) or "wall_time_s" not in rec or not isinstance(rec.get("data"), Mapping):
        return None
    run = rec.get("params", {}).get("run") if isinstance(rec.get("params"), Mapping) else None
    if not isinstance(run, Mapping) or not isinstance(run.get("table"), str) or not isinstance(run.get("method"), str):
        return None
    return dict(run)


def _stage_records(out_dir: Any) -> tuple[Optional[int], Optional[float]]:
    """(world size, summed training seconds) from a run folder's stage provenance and stage.json files."""
    if not out_dir or not Path(out_dir).is_dir():
        return None, None
    worlds, train = [], 0.0
    for p in Path(out_dir).glob("*/provenance*.json"):
        try:
            worlds.append(int(json.loads(p.read_text(encoding="utf-8"))["params"]["world_size"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    stages = list(Path(out_dir).glob("*/stage.json"))
    for p in stages:
        try:
            train += float(json.loads(p.read_text(encoding="utf-8")).get("train_time_s") or 0.0)
        except (OSError, ValueError, TypeError):
            continue
    return (max(worlds) if worlds else None), (train if stages else None)


def _dataset(table: str, run: Mapping) -> str:
    spec = TABLES.get(table)
    name = spec.train_dataset if spec is not None else str(run.get("data", {}).get("dataset", "?"))
    return "gldv2_6pct" if name == "gldv2" else name  # the thesis's column (the stand-in stands in for it)


def cost_record(path: str | Path) -> Optional[dict]:
    """The cost row of one provenance JSON, or None if the file is not a table row's record."""
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run = _row_fields(rec)
    if run is None:
        return None
    table, device = run["table"], rec.get("device") or {}
    spec = TABLES.get(table)
    gpu = run.get("device") != "cpu" and int(device.get("cuda_count") or 0) > 0
    training = (rec.get("extra") or {}).get("training") or {}
    world, train_s = _stage_records(training.get("out_dir"))
    devices = world or 1
    wall = float(rec["wall_time_s"] or 0.0)
    fit_wall = float(training.get("wall_time_s") or 0.0)  # 0 for rows that train nothing (pretrained)
    train = max(fit_wall, train_s or 0.0)
    wall_h = wall / 3600.0
    hours = (max(wall - fit_wall, 0.0) + train * devices) / 3600.0
    standin = rec["data"].get("standin")
    return {"table": table, "method": run["method"], "dataset": _dataset(table, run),
            "init": ("pretrained" if spec.init == "imagenet" else "scratch") if spec is not None else "?",
            "data": "stand-in" if standin else "real", "device": device.get("summary", "unknown"),
            "devices": devices, "unit": "GPU hours" if gpu else "CPU hours", "wall_h": wall_h,
            "hours": hours, "train_h": train * devices / 3600.0 if training else None,
            "timestamp": rec.get("timestamp_utc"), "record": shown_path(path)}


def cost_records(results_root: str | Path | None = None,
                 include: Sequence[str] = ("standin", "real")) -> pd.DataFrame:
    """Every table row's provenance under ``results_root`` (default ``results/``): real rows from the tree
    outside ``standin/``, stand-in rows from ``standin/``, as ``include`` says."""
    bad = set(include) - {"standin", "real"}
    if bad or not include:
        raise ConfigError(f"include must name 'standin' and/or 'real', got {list(include)}. Fix: e.g. "
                          "['standin', 'real'].")
    rows = []
    for tree in include:
        standin = tree == "standin"
        base = results_base(standin=standin, results_dir=results_root, size="default")
        for path in sorted(base.rglob("*.json")) if base.is_dir() else []:
            parts = path.relative_to(base).parts
            if (not standin and parts[0] == "standin") or _SKIPPED_FOLDERS & set(parts[:-1]):
                continue
            row = cost_record(path)
            if row is not None and (row["data"] == "stand-in") == standin:
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def cost_table(records: pd.DataFrame, projected: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The thesis's rows beside ours: method, init, dataset, paper (GPU hours), paper_printed, projected (GPU
    hours at paper scale on the measured GPU, :mod:`.cost_projection`; NaN without a measurement), then our rows'
    columns (several of ours per paper cell where several tables trained the same method x dataset x init)."""
    ref = load_reference(TABLE)
    left = ref.rename(columns={"value": "paper", "printed": "paper_printed", "setting": "init"})[
        ["method", "paper_label", "init", "dataset", "paper", "paper_printed"]]
    proj = projected if projected is not None else pd.DataFrame(columns=["method", "init", "dataset"])
    proj = proj.rename(columns={"projected_h": "projected", "basis": "projected_basis"})
    left = left.merge(proj.reindex(columns=["method", "init", "dataset", "projected", "projected_basis"]),
                      on=["method", "init", "dataset"], how="left")
    left["projected"] = pd.to_numeric(left["projected"], errors="coerce")
    left = left.assign(_order=np.arange(len(left)))
    out = left.merge(records, on=["method", "init", "dataset"], how="outer")
    out["_order"] = out["_order"].fillna(len(left))
    out = out.sort_values(["_order", "method", "init", "dataset", "data"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def _fmt_hours(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{v:.3g}" if v >= 1 else f"{v:.3g} ({v * 3600:.0f} s)"


def render_cost_markdown(table: pd.DataFrame, *, standin: bool, measured: Optional[dict] = None) -> str:
    """Markdown of :func:`cost_table`'s frame, with the data label and how cost is counted."""
    label = ("**STAND-IN DATA**: our rows are runs on the small synthetic stand-in, usually on a CPU; they check "
             "the bookkeeping and are not comparable with the paper's hours." if standin
             else "**Real data**: our rows are runs on the real datasets.")
    lines = [f"# {TABLE}{' (STAND-IN DATA)' if standin else ''}", "",
             "Computational cost: the thesis's Table 10 (GPU hours on a four-GPU A100 system, as printed) beside "
             "ours (wall time x devices: GPU hours, or CPU hours of one process).", "", label, "",
             f"| method | init | dataset | paper (GPU h) | projected (GPU h{', ' + measured['device'] if measured else ''}"
             ") | ours | unit | train time | device | table | record |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        paper = r["paper_printed"] if isinstance(r.get("paper_printed"), str) and r["paper_printed"] else "—"
        if paper not in ("—",) and paper.endswith("d"):
            paper = f"{paper} = {r['paper']:g} h"
        ours = _fmt_hours(r["hours"]) if isinstance(r.get("unit"), str) else "—"
        rec = f"`{Path(r['record']).name}` ({r['table']})" if isinstance(r.get("record"), str) else ""
        lines.append(f"| {r['method']} | {r['init']} | {r['dataset']} | {paper} | "
                     f"{_fmt_hours(r.get('projected'))} | {ours} | "
                     f"{r['unit'] if isinstance(r.get('unit'), str) else ''} | {_fmt_hours(r.get('train_h'))} | "
                     f"{r['device'] if isinstance(r.get('device'), str) else ''} | "
                     f"{r['table'] if isinstance(r.get('table'), str) else ''} | {rec} |")
    cells = table.drop_duplicates(["method", "init", "dataset"])
    paper_total = cells["paper"].sum()
    projected = cells.loc[cells["paper"].notna(), "projected"] if "projected" in cells else pd.Series(dtype=float)
    projected_total = _fmt_hours(projected.sum()) if projected.notna().any() else "—"
    if projected.isna().any() and projected.notna().any():
        projected_total += f" ({int(projected.isna().sum())} rows not projected)"
    ours = "; ".join(f"{_fmt_hours(h)} {unit}" for unit, h in table.groupby("unit")["hours"].sum().items()) or "—"
    days, hours = divmod(round(paper_total), 24)
    lines.append(f"| **total** | | | {paper_total:g} h = {days}d + {hours}h | {projected_total} | {ours} | | | | | |")
    return "\n".join(lines) + "\n\n" + projection_note(measured) + "\n"


def build_cost_table(results_root: str | Path | None = None,
                     include: Sequence[str] = ("standin", "real")) -> FigureResult:
    """Read every row record, write ``table10_cost.{md,csv,json}`` (+ a PNG under figures/) per data tree that
    has records (``results/standin/`` for stand-in, ``results/`` for real), and return the tables."""
    start = time.time()
    include = [include] if isinstance(include, str) else list(include)
    records = cost_records(results_root, include)
    bench_dir = (Path(results_root) if results_root is not None else results_dir()) / "benchmarks"
    projected, measured = projection(load_reference(TABLE), bench_dir)
    result = FigureResult(TABLE, standin=True, figures={}, paths={}, notes=(
        "Cost of each table row's provenance record = its wall time outside training on one device + its "
        "training time x the training world size (training time from the stage records where the row reused a "
        "finished run); GPU hours where the row ran on GPUs, CPU hours otherwise. The thesis's hours are as "
        "printed ('2.5d' = 60 h)."))
    markdown = []
    trees = [t for t in ("standin", "real") if t in include]
    for tree in trees:
        standin = tree == "standin"
        mine = records[records["data"] == ("stand-in" if standin else "real")]
        if mine.empty and (tree != trees[0] or not records.empty):
            continue  # a tree without records gets no files (the first one still shows the paper's column)
        table = cost_table(mine, projected)
        md = render_cost_markdown(table, standin=standin, measured=measured)
        markdown.append(md)
        key = "standin" if standin else "real"
        result.tables[key] = table
        folder = results_base(standin=standin, results_dir=results_root, size="default")
        fig = plot_cost(table, title=f"Table 10: compute cost, thesis vs ours ({data_label(standin)})")
        result.figures[key] = fig
        if mine.empty:
            continue  # nothing of ours to record yet: show, write nothing
        result.paths[f"{key}_png"] = save_figure(fig, folder / "figures" / f"{TABLE}.png")
        result.paths[f"{key}_md"] = atomic_write_text(folder / f"{TABLE}.md", md)
        result.paths[f"{key}_csv"] = atomic_write_text(folder / f"{TABLE}.csv", table.to_csv(index=False))
        prov = collect_provenance({"table": TABLE, "include": include, "results_root": shown_path(folder)},
                                  standin=standin,
                                  data_fingerprint=None, wall_time_s=time.time() - start,
                                  extra={"records": mine["record"].tolist(), "projection": measured})
        result.paths[f"{key}_json"] = atomic_write_text(folder / f"{TABLE}.json", json.dumps(prov, indent=2) + "\n")
        result.provenance[key] = prov
    result.standin = "real" not in result.tables
    result.markdown = "\n\n".join(markdown)
    return result


def run_cost_notebook(namespace: Mapping[str, Any]) -> FigureResult:
    """The notebook's one call: parameters ``include`` and ``results_root`` (others are refused)."""
    from ..config import notebook_parameters

    params = notebook_parameters(namespace)
    unknown = set(params) - {"include", "results_root"}
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)} for {TABLE}. Fix: use include (['standin', "
                          "'real']) and results_root (None or a folder).")
    return build_cost_table(params.get("results_root"), params.get("include", ("standin", "real")))
