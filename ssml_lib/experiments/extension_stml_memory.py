"""Beyond the thesis: STML with a cross-batch memory (``stml_xbm``) beside STML, on the four pre-trained settings
(Tables 1, 3, 5 and 7), shown next to the thesis's STML rows. The thesis proposes the memory as future work
(§6.2) and reports no number for it: its column says so.

Every run is a table row (:func:`~.runner.run_table_row`: the row's checks, start network, training, protocol,
results and provenance), so ``stml_xbm`` lands in each table's results as an extra row. A memory-size sweep
runs ``stml_xbm`` on the first setting once per size, its results kept apart (``extension_stml_memory/
memory_<size>/`` in the results folder) so the table's own row is not overwritten. The precision of mined
positives per epoch is each run's logged ``pos_precision`` (:func:`~.mining_snapshots.read_precision_curves`);
for ``stml_xbm`` it counts memory pairs too, and ``memory_negative_same_class`` is the share of memory
negatives that share the row's class. Labels are read for these diagnostics only.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import pandas as pd

from ..config import Config, load_config, notebook_parameters, to_dict
from ..errors import ConfigError
from ..io import atomic_write_text
from ..paths import REPO_ROOT
from ..provenance import collect_provenance
from ..results import load_reference, results_base
from .figures import FigureResult, data_label, figures_dir, plot_precision_curves, save_figure
from .mining_snapshots import read_precision_curves
from .tables import get_table

NAME = "extension_stml_memory"
SETTINGS = ("table1_cub_pretrained", "table3_cars_pretrained", "table5_sop_pretrained", "table7_gldv2")
METHODS = ("stml", "stml_xbm")
HEADLINE = {"recall": ("R@1", "R@1 (pooled)"), "revisited": ("mAP_medium", "mAP_medium (pooled)")}
DIAGNOSTICS = ("pos_precision", "batch_pos_precision", "memory_negative_same_class", "memory_rows")
NO_THESIS = "no thesis number: an extension"


@dataclasses.dataclass(frozen=True)
class StmlMemoryConfig(Config):
    settings: tuple[str, ...] = ("table1_cub_pretrained",)
    memory_sizes: tuple[int, ...] = ()  # stml_xbm's memory_size per sweep run, on the first setting
    paper_scale: bool = False  # each row reads params/<table>/<method>.yaml (real data only)
    standin_epochs: Optional[int] = 2  # stand-in runs only (the memory joins after one); None: the recipe's 8

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.settings if s not in SETTINGS]
        if not self.settings or bad or len(set(self.settings)) != len(self.settings):
            raise ConfigError(f"settings must be distinct names among {', '.join(SETTINGS)}; got "
                              f"{list(self.settings)}. Fix: e.g. -p settings '[\"table1_cub_pretrained\"]'.")
        if any(m < 1 for m in self.memory_sizes) or (self.standin_epochs is not None and self.standin_epochs < 1):
            raise ConfigError(f"memory_sizes must be positive row counts and standin_epochs None or >= 1, got "
                              f"{list(self.memory_sizes)} and {self.standin_epochs}. Fix: e.g. [240, 480, 960], 2.")


def _memory_only() -> set[str]:
    from ..methods.schedule import method_config_class

    own = {f.name for f in dataclasses.fields(method_config_class("stml_xbm"))}
    return own - {f.name for f in dataclasses.fields(method_config_class("stml"))}


def plan(cfg: StmlMemoryConfig, overrides: Mapping[str, Any]) -> list[dict]:
    """The runs, each ``{'label', 'table', 'method', 'memory_size', 'params_file', 'overrides'}``: STML and
    stml_xbm per setting, then the sweep. The memory's own settings reach stml_xbm rows only."""
    memory_keys, standin = _memory_only(), overrides.get("data_root") is None
    common = {k: v for k, v in overrides.items() if k not in memory_keys}
    own = {k: v for k, v in overrides.items() if k in memory_keys}
    if standin and cfg.standin_epochs is not None and "epochs" not in overrides:
        common["epochs"] = cfg.standin_epochs

    def job(table, method, size=None, extra=None):
        params = REPO_ROOT / "params" / table / f"{method}.yaml" if cfg.paper_scale else None
        label = method if size is None else f"{method} m{size}"
        return {"label": label, "table": table, "method": method, "memory_size": size, "params_file": params,
                "overrides": {"method": method, **common, **(own if method == "stml_xbm" else {}), **(extra or {})}}

    jobs = [job(t, m) for t in cfg.settings for m in METHODS]
    return jobs + [job(cfg.settings[0], "stml_xbm", size, {"memory_size": size}) for size in cfg.memory_sizes]


def run_stml_memory(settings=("table1_cub_pretrained",), *, memory_sizes=(), paper_scale: bool = False,
                    standin_epochs: Optional[int] = 2, progress: bool = True, **overrides: Any) -> FigureResult:
    """Train and evaluate STML and stml_xbm on ``settings`` (and the sweep), then the comparison tables and the
    precision curves. ``overrides`` go to every row (data_root, standin_size, device, seed, ...); the memory's
    own settings (memory_terms, memory_weight, ...) to stml_xbm rows only."""
    from .runner import resolve_params, run_table_row

    start = time.time()
    cfg = load_config(StmlMemoryConfig, None, dict(settings=[settings] if isinstance(settings, str) else list(settings),
                                                   memory_sizes=list(memory_sizes), paper_scale=paper_scale,
                                                   standin_epochs=standin_epochs))
    overrides = {k: v for k, v in overrides.items() if v is not None}  # None: not given
    jobs = plan(cfg, overrides)
    resolved = [resolve_params(j["table"], j["params_file"], j["overrides"]) for j in jobs]  # all, before any work
    first = resolved[0]
    standin, size = first["standin"], first["run"].data.standin_size
    base = results_base(standin=standin, results_dir=first["run"].output_dir, size=size)
    rows = {}
    for j in jobs:
        if j["memory_size"] is not None:  # the sweep's results apart from the table's own stml_xbm row
            j["overrides"]["output_dir"] = str(base / NAME / f"memory_{j['memory_size']}")
        rows[(j["table"], j["label"])] = run_table_row(j["table"], j["params_file"], j["overrides"], progress=progress)
    comparison, diagnostics, sweep = _tables(cfg, jobs, rows)
    out = figures_dir(standin, first["run"].output_dir, size)
    curves = read_precision_curves({f"{t}/{label}": _run_dir(r) for (t, label), r in rows.items()})
    figures, paths = {}, {}
    for table in cfg.settings:
        part = curves[curves["method"].str.startswith(f"{table}/")].copy()
        part["method"] = part["method"].str.split("/").str[1]
        figures[table] = plot_precision_curves(part, title=f"Precision of mined positives, {table} "
                                                           f"({'stand-in' if standin else 'real data'})")
        paths[table] = save_figure(figures[table], out / f"{NAME}_{table}_precision.png")
    markdown = render(cfg, comparison, diagnostics, sweep, standin)
    paths["markdown"] = atomic_write_text(base / f"{NAME}.md", markdown)
    paths["csv"] = atomic_write_text(out / f"{NAME}.csv", comparison.to_csv(index=False))
    paths["precision_csv"] = atomic_write_text(out / f"{NAME}_precision.csv", curves.to_csv(index=False))
    provenance = collect_provenance(
        {"config": to_dict(cfg), "overrides": overrides,
         "rows": {f"{j['table']}/{j['label']}": {k: to_dict(r[k]) for k in ("run", "model", "method", "train")}
                  for j, r in zip(jobs, resolved)}},
        standin=standin, data_fingerprint=None, wall_time_s=time.time() - start,
        extra={"rows": {f"{t}/{label}": str(r.paths["json"]) for (t, label), r in rows.items()}})
    paths["provenance"] = atomic_write_text(out / f"{NAME}.json", json.dumps(provenance, indent=2, default=str) + "\n")
    notes = (f"STML + memory (`stml_xbm`) is this project's extension (the thesis's future work, §6.2): the thesis "
             f"has no number for it, shown as '{NO_THESIS}'. The curves are each run's logged `pos_precision` per "
             "epoch (for `stml_xbm`: batch and memory pairs with target > 0.5).")
    return FigureResult(NAME, standin, figures, paths, tables={"comparison": comparison, "diagnostics": diagnostics,
                                                               "sweep": sweep, "precision": curves},
                        provenance=provenance, notes=notes, markdown=markdown)


def _run_dir(row) -> Path:
    path = Path(row.info["training"]["out_dir"])
    return path if path.is_absolute() else REPO_ROOT / path


def _value(row, dataset: str, metric: str) -> float:
    hit = row.rows[(row.rows["dataset"] == dataset) & (row.rows["metric"] == metric)]
    return float(hit["value"].iloc[0]) if len(hit) else math.nan


def _tables(cfg: StmlMemoryConfig, jobs: list[dict], rows: Mapping) -> tuple[pd.DataFrame, ...]:
    comparison, diagnostics, sweep = [], [], []
    for table in cfg.settings:
        spec, ref = get_table(table), load_reference(table)
        for dataset in spec.eval_datasets:
            for metric in HEADLINE[spec.protocol]:
                thesis = ref[(ref["method"] == "stml") & (ref["dataset"] == dataset) & (ref["metric"] == metric)]
                comparison.append({"setting": table, "dataset": dataset, "metric": metric,
                                   "thesis STML": float(thesis["value"].iloc[0]) if len(thesis) else math.nan,
                                   "STML (ours)": _value(rows[(table, "stml")], dataset, metric),
                                   "STML + memory (ours)": _value(rows[(table, "stml_xbm")], dataset, metric)})
    for j in jobs:
        final = rows[(j["table"], j["label"])].info["training"]["final"]
        rec = {"setting": j["table"], "run": j["label"], **{k: final.get(k) for k in DIAGNOSTICS}}
        if j["method"] == "stml":  # STML's mined positives are its batch pairs; it has no memory
            rec["batch_pos_precision"] = rec["pos_precision"]
        diagnostics.append(rec)
        if j["memory_size"] is not None:
            spec = get_table(j["table"])
            dataset, (metric, pooled) = spec.eval_datasets[0], HEADLINE[spec.protocol]
            row = rows[(j["table"], j["label"])]
            sweep.append({"memory_size": j["memory_size"], "dataset": dataset, metric: _value(row, dataset, metric),
                          pooled: _value(row, dataset, pooled), "pos_precision": final.get("pos_precision"),
                          "memory_negative_same_class": final.get("memory_negative_same_class")})
    return pd.DataFrame(comparison), pd.DataFrame(diagnostics), pd.DataFrame(sweep)


def _cell(v: Any, percent: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{100 * v:.1f}" if percent else f"{v:.0f}" if v.is_integer() and v > 100 else f"{v:.2f}"
    return str(v)


def _markdown_table(df: pd.DataFrame, percent: tuple[str, ...] = ()) -> list[str]:
    """``percent``: columns holding fractions, shown in %; row counts show as integers."""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(_cell(r[c], c in percent) for c in df.columns) + " |" for _, r in df.iterrows()]
    return lines + [""]


def render(cfg: StmlMemoryConfig, comparison: pd.DataFrame, diagnostics: pd.DataFrame, sweep: pd.DataFrame,
           standin: bool) -> str:
    """The extension's Markdown: the comparison (thesis STML, ours), the diagnostics, the sweep."""
    shown = comparison.copy()
    shown["thesis STML + memory"] = NO_THESIS
    lines = [f"# {NAME}: STML with a cross-batch memory", "", f"**{data_label(standin)}**", "",
             f"STML + memory (`stml_xbm`) is an extension (the thesis's §6.2 future work), so its thesis column "
             f"reads '{NO_THESIS}'. Values in %; the mined-positive precisions below in % of pairs.", ""]
    lines += _markdown_table(shown)
    lines += ["## Last epoch's mined-positive precision and memory diagnostics", ""]
    lines += _markdown_table(diagnostics, percent=DIAGNOSTICS[:3])
    if len(sweep):
        lines += [f"## Memory-size sweep of `stml_xbm` on {cfg.settings[0]}", ""]
        lines += _markdown_table(sweep, percent=("pos_precision", "memory_negative_same_class"))
    return "\n".join(lines)


def run_stml_memory_notebook(namespace: Mapping[str, Any], *, progress: bool = True) -> FigureResult:
    """The notebook's one call: its parameters checked (unknown names refused), then the runs and tables."""
    params = notebook_parameters(namespace)
    own = {k: params.pop(k) for k in ("settings", "memory_sizes", "paper_scale", "standin_epochs") if k in params}
    return run_stml_memory(**own, progress=progress, **params)
