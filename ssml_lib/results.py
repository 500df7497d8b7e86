"""Results: tidy CSV + provenance JSON per (table, method), and a Markdown table with the paper's numbers.

Layout (``results_dir`` defaults to ``ssml_lib.paths.results_dir()``)::

    results/<table>/<method>.csv    real-data numbers         results/<table>.md (paper beside ours)
    results/<table>/<method>.json   its provenance record
    results/standin/<table>/...     the same for stand-in data results/standin/<table>.md

Stand-in results never share a folder, a CSV or a Markdown table with real ones: the tree is separate (and
git-ignored), every row carries ``standin=True``, and the Markdown header says STAND-IN DATA. Values are in
percent, as the thesis prints them (``rows_from_metrics`` converts the fractions ``ssml_lib.eval`` returns);
Table 10 is in GPU hours. Every write is atomic, and all input is checked before anything is written.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .errors import ConfigError
from .io import atomic_write_text
from .paths import REPO_ROOT, results_dir as _default_results_dir, standin_results_base

REFERENCE_DIR = REPO_ROOT / "results" / "reference"
KEYS = ["method", "dataset", "metric", "setting"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_RESERVED = {"reference", "standin", "executed"}


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{kind} name {name!r} is not valid. Fix: use lower-case letters, digits and "
                          "underscores, e.g. 'table7_gldv2' or 'insclr'.")
    return name


def results_base(*, standin: bool, results_dir: str | Path | None = None, size: str | None = None) -> Path:
    """The folder holding ``<table>/`` and ``<table>.md``: ``results_dir`` (stand-in: its ``standin/``) when
    given, else ``results/`` for real data and :func:`ssml_lib.paths.standin_results_base` for the stand-in."""
    if results_dir is not None:
        return Path(results_dir) / "standin" if standin else Path(results_dir)
    return standin_results_base(size) if standin else _default_results_dir()


def table_dir(table: str, *, standin: bool, results_dir: str | Path | None = None, size: str | None = None) -> Path:
    if table in _RESERVED:
        raise ConfigError(f"table name {table!r} is reserved for results/{table}/. Fix: name the table after its "
                          "notebook, e.g. 'table7_gldv2'.")
    return results_base(standin=standin, results_dir=results_dir, size=size) / _check_name("table", table)


def standin_size_of(provenance: Mapping[str, Any]) -> str | None:
    """The stand-in size a provenance record was made at (None for real data or old records)."""
    try:
        return provenance["params"]["run"]["data"]["standin_size"]
    except (KeyError, TypeError):
        return None


def _standin_of(provenance: Mapping[str, Any]) -> bool:
    standin = provenance.get("data", {}).get("standin") if isinstance(provenance, Mapping) else None
    if not isinstance(standin, bool):
        raise ConfigError("the provenance record has no boolean data.standin. Fix: build it with "
                          "ssml_lib.provenance.collect_provenance(..., standin=True/False, ...).")
    return standin


def rows_from_metrics(dataset: str, *, recall: Mapping[int, float] | None = None, nmi: float | None = None,
                      revisited: Mapping[str, Any] | None = None, setting: str = "",
                      as_percent: bool = True) -> list[dict]:
    """Tidy rows from ``ssml_lib.eval`` outputs (fractions), in percent unless ``as_percent=False``."""
    scale = 100.0 if as_percent else 1.0
    rows = [{"dataset": dataset, "metric": f"R@{int(k)}", "value": float(v) * scale, "setting": setting}
            for k, v in sorted((recall or {}).items())]
    if nmi is not None:
        rows.append({"dataset": dataset, "metric": "NMI", "value": float(nmi) * scale, "setting": setting})
    for mode in ("easy", "medium", "hard"):
        if revisited and mode in revisited:
            rows.append({"dataset": dataset, "metric": f"mAP_{mode}", "value": float(revisited[mode]) * scale,
                         "setting": setting})
    return rows


def _tidy(table: str, method: str, rows: pd.DataFrame | Sequence[Mapping], standin: bool) -> pd.DataFrame:
    df = pd.DataFrame(rows).copy() if not isinstance(rows, pd.DataFrame) else rows.copy()
    missing = [c for c in ("dataset", "metric", "value") if c not in df.columns]
    if df.empty or missing:
        raise ConfigError(f"results for {table}/{method} need rows with columns dataset, metric, value "
                          f"(missing: {missing or 'all rows'}). Fix: pass e.g. rows_from_metrics(...).")
    for col, want in (("table", table), ("method", method), ("standin", standin)):
        if col in df.columns and not (df[col] == want).all():
            raise ConfigError(f"column {col!r} disagrees with the {col} given ({want!r}). Fix: drop the column "
                              "or make it match.")
        df[col] = want
    df["setting"] = df["setting"].fillna("").astype(str) if "setting" in df.columns else ""
    values = pd.to_numeric(df["value"], errors="coerce")
    if values.isna().any() or not values.map(math.isfinite).all():
        bad = df.loc[values.isna() | ~values.fillna(0).map(math.isfinite), ["dataset", "metric", "value"]]
        raise ConfigError(f"non-numeric or non-finite values in {table}/{method}:\n{bad.to_string(index=False)}\n"
                          "Fix: leave a metric out rather than writing NaN or inf.")
    df["value"] = values.astype(float)
    dup = df.duplicated(["dataset", "metric", "setting"], keep=False)
    if dup.any():
        raise ConfigError(f"duplicate (dataset, metric, setting) rows in {table}/{method}:\n"
                          f"{df.loc[dup, ['dataset', 'metric', 'setting']].to_string(index=False)}\n"
                          "Fix: give each repeat its own setting, e.g. 'cycle1'.")
    first = ["table", "method", "dataset", "metric", "value", "setting", "standin"]
    return df[first + [c for c in df.columns if c not in first]]


def write_results(table: str, method: str, rows: pd.DataFrame | Sequence[Mapping], provenance: Mapping[str, Any],
                  *, results_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``<method>.csv`` and ``<method>.json`` under the table's folder, then rebuild ``<table>.md``.

    The folder is ``results/<table>/`` for real data and ``results/standin/<table>/`` for stand-in data, as
    ``provenance['data']['standin']`` says. Returns ``{'csv', 'json', 'md'}`` paths.
    """
    _check_name("table", table), _check_name("method", method)
    standin = _standin_of(provenance)
    df = _tidy(table, method, rows, standin)
    record = json.dumps(provenance, indent=2, sort_keys=False, default=str)  # fails here, before any write
    size = standin_size_of(provenance) if standin else None
    folder = table_dir(table, standin=standin, results_dir=results_dir, size=size)
    paths = {"csv": folder / f"{method}.csv", "json": folder / f"{method}.json",
             "md": folder.parent / f"{table}.md"}
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["json"], record + "\n")
    atomic_write_text(paths["md"], render_table(table, results_dir, standin=standin, size=size))
    return paths


def load_results(table: str, *, standin: bool, results_dir: str | Path | None = None,
                 size: str | None = None) -> pd.DataFrame:
    """All methods' rows of one table (empty frame if none yet)."""
    folder = table_dir(table, standin=standin, results_dir=results_dir, size=size)
    frames = [pd.read_csv(p, keep_default_na=False, dtype={"setting": str}) for p in sorted(folder.glob("*.csv"))]
    if not frames:
        return pd.DataFrame(columns=["table", "method", "dataset", "metric", "value", "setting", "standin"])
    return pd.concat(frames, ignore_index=True)


def load_provenance(table: str, *, standin: bool, results_dir: str | Path | None = None,
                    size: str | None = None) -> dict[str, dict]:
    folder = table_dir(table, standin=standin, results_dir=results_dir, size=size)
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def reference_tables() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))


def load_reference(table: str) -> pd.DataFrame:
    """The thesis's numbers for ``table`` (see ``results/reference/README.md``)."""
    path = REFERENCE_DIR / f"{_check_name('table', table)}.csv"
    if not path.is_file():
        raise ConfigError(f"no reference numbers for table {table!r} ({path} is missing). Fix: use one of "
                          f"{reference_tables()}.")
    return pd.read_csv(path, keep_default_na=False, dtype={"printed": str, "setting": str})


def side_by_side(table: str, ours_df: pd.DataFrame | Sequence[Mapping] | None = None) -> pd.DataFrame:
    """One row per (method, dataset, metric, setting) with ``paper`` and ``ours`` columns and ``diff``.

    ``ours_df`` holds tidy rows (with a ``method`` column); rows the paper lacks get ``paper`` = NaN, and the
    paper's rows we have not run get ``ours`` = NaN.
    """
    try:
        ref = load_reference(table)
    except ConfigError:
        ref = pd.DataFrame(columns=KEYS + ["paper_label", "value"])
    ours = pd.DataFrame(ours_df if ours_df is not None else [], columns=None)
    if ours.empty:
        ours = pd.DataFrame(columns=KEYS + ["value"])
    ours = ours.copy()
    ours["setting"] = ours["setting"].fillna("").astype(str) if "setting" in ours.columns else ""
    left = ref[KEYS + ["paper_label", "value"]].rename(columns={"value": "paper"})
    left["_order"] = range(len(left))
    right = ours[KEYS + ["value"]].rename(columns={"value": "ours"})
    right["_extra"] = range(len(left), len(left) + len(right))
    out = left.merge(right, on=KEYS, how="outer")
    # the paper's row order first, then rows only we have (a merge on strings would sort them)
    out = out.sort_values(by="_order", key=lambda o: o.fillna(out["_extra"]), kind="stable").reset_index(drop=True)
    out["paper"] = pd.to_numeric(out["paper"], errors="coerce")
    out["ours"] = pd.to_numeric(out["ours"], errors="coerce")
    out["diff"] = out["ours"] - out["paper"]
    out["paper_label"] = out["paper_label"].fillna("")
    return out[["method", "paper_label", "dataset", "setting", "metric", "paper", "ours", "diff"]]


# ---------------------------------------------------------------- Markdown


def _fmt(v: Any, printed: str = "") -> str:
    if printed:  # the paper's cell exactly as printed (keeps "54.40"); "2.5d" also shows its value in hours
        try:
            float(printed)
            return printed
        except ValueError:
            return f"{printed} = {float(v):g}"
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.2f}"


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _seconds(x: Any) -> str:
    return "—" if x is None else f"{x / 3600:.2f} h" if x >= 3600 else f"{x:.0f} s"


def _trained_at(rec: Mapping, commit: str) -> str:
    """The training stages' commits where they differ from the record's (a finished run folder reused)."""
    stages = ((rec.get("extra") or {}).get("training") or {}).get("trained_at") or {}
    other = sorted({(g or {}).get("commit") or "unknown" for g in stages.values()} - {commit})
    return "".join(f" (trained at `{c[:10]}`)" for c in other)


def _provenance_lines(records: Mapping[str, dict], folder: str) -> list[str]:
    lines = ["| method | commit | date (UTC) | device | training | this run | data | record |",
             "|---|---|---|---|---|---|---|---|"]
    for method, rec in records.items():
        git = rec.get("git", {})
        full = git.get("commit") or "no commit"
        commit = f"`{full[:10]}`" + (" (dirty)" if git.get("dirty") else "") + _trained_at(rec, full)
        train = (((rec.get("extra") or {}).get("training") or {}).get("final") or {}).get("train_time_s")
        data = rec.get("data", {})
        fp = (data.get("fingerprint") or "")[:19]
        lines.append(f"| {method} | {commit} | {str(rec.get('timestamp_utc', '—'))[:19]} | "
                     f"{rec.get('device', {}).get('summary', '—')} | {_seconds(train)} | "
                     f"{_seconds(rec.get('wall_time_s'))} | {data.get('label', '—')}"
                     f"{f' `{fp}`' if fp else ''} | [{method}.json]({folder}/{method}.json) |")
    return lines


def render_table(table: str, results_dir: str | Path | None = None, *, standin: bool = False,
                 size: str | None = None) -> str:
    """Markdown: per dataset, one row per method (and setting), cells "paper / ours", then provenance."""
    ours = load_results(table, standin=standin, results_dir=results_dir, size=size)
    records = load_provenance(table, standin=standin, results_dir=results_dir, size=size)
    sizes = sorted({standin_size_of(r) or "unknown" for r in records.values()})
    sbs = side_by_side(table, ours)
    try:
        ref = load_reference(table)
        caption = ref["source"].iloc[0].split(", ", 1)[-1]
        printed = {tuple(r[k] for k in KEYS): r["printed"] for _, r in ref.iterrows()}
        unit = "GPU hours" if (ref["unit"] == "GPU hours").all() else "%"
    except ConfigError:
        caption, printed, unit = "no paper numbers for this table", {}, "%"
    label = ("**STAND-IN DATA** (stand-in size: " + (", ".join(sizes) or "none yet") + "): 'ours' come from small "
             "synthetic stand-in datasets in the real layouts, a convnet4 at 48 px (CIFAR-10: 32 px) and CPU-minute schedules; they "
             "are not comparable with the paper's numbers (docs/standin.md)."
             if standin else "**Real data**: 'ours' come from the real datasets (fingerprints below).")
    out = [f"# {table}{' (STAND-IN DATA)' if standin else ''}", "", f"{caption}", "", label, "",
           f"Cells: paper / ours ({unit}); — means no number. Generated by `ssml_lib.results`; do not edit.", ""]
    for dataset in _ordered(sbs["dataset"]):
        part = sbs[sbs["dataset"] == dataset]
        metrics = _ordered(part["metric"])
        out += [f"## {dataset}", "", "| method | " + " | ".join(metrics) + " |",
                "|---|" + "---|" * len(metrics)]
        for method, setting in _ordered(zip(part["method"], part["setting"])):
            rows = part[(part["method"] == method) & (part["setting"] == setting)]
            label_txt = next((x for x in rows["paper_label"] if x), "")
            name = f"{label_txt} (`{method}`)" if label_txt else f"`{method}`"
            name += f" {setting}" if setting and not label_txt else ""
            cells = []
            for metric in metrics:
                hit = rows[rows["metric"] == metric]
                if hit.empty:
                    cells.append("— / —")
                    continue
                r = hit.iloc[0]
                paper = _fmt(r["paper"], printed.get((method, dataset, metric, setting), ""))
                cells.append(f"{paper} / {_fmt(r['ours'])}")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Provenance", ""]
    out += _provenance_lines(records, table) if records else ["No runs recorded yet."]
    return "\n".join(out) + "\n"
