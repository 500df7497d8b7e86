"""Record the stand-in study: every tier-1 table and figure, regenerated from a clean commit into results/standin/.

    python -m ssml_lib.experiments.record                          # everything (a few CPU hours on 2 cores)
    python -m ssml_lib.experiments.record --tables table1_cub_pretrained --no-figures
    python -m ssml_lib.experiments.record --no-tables              # figures, Table 10, findings only
    python -m ssml_lib.experiments.record --dry-run                # what would run

This is the only command that writes the committed ``results/standin/``: notebooks, the demo, nbval and
``run_table`` write stand-in results to ``runs/results/standin-<size>/`` (git-ignored). Every row runs through
its notebook (papermill, as ``run_table`` does) at the ``default`` stand-in size with the parameters of
``params/standin*.yaml`` and the table's method settings, with ``SSML_RECORD=1`` so that results, figures and
executed notebooks land in ``results/standin/``. Besides the thesis's rows it records, per table, the reference
rows a reader needs: the untrained network of every scratch table (``pretrained`` = random init there) and
ISL and MoM on Table 1; and the extension ``stml_xbm`` on every pre-trained setting (Tables 1, 3, 5, 7). At the
end it rebuilds Table 10's cost and ``results/standin/README.md`` (the findings checklist, and STML + memory
beside STML: :mod:`ssml_lib.experiments.findings`).

The git tree must be clean (``--allow-dirty`` to override), so that every record names the commit it came from.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Optional, Sequence

from ..errors import ConfigError, SsmlError
from ..paths import REPO_ROOT, shown_path
from .tables import TABLES

EXTRA_ROWS = {  # stml_xbm: the extension (STML + cross-batch memory), on every pre-trained setting
    "table1_cub_pretrained": ("isl", "mom", "stml_xbm"),
    "table3_cars_pretrained": ("stml_xbm",),
    "table5_sop_pretrained": ("stml_xbm",),
    "table7_gldv2": ("stml_xbm",),
    "table2_cub_scratch": ("pretrained",),
    "table4_cars_scratch": ("pretrained",),
    "table6_sop_scratch": ("pretrained",),
    "table9_gldv2_scratch": ("pretrained",),
}
FIGURES = {  # notebook -> parameters
    "fig20_21_neighbours": [{"method": m} for m in ("spreading", "insclr", "stml")],
    "positive_mining": [{"table": "table1_cub_pretrained"}, {"table": "table2_cub_scratch"}],
}
SIZE = "default"


def rows_of(table: str) -> list[str]:
    return list(TABLES[table].methods) + [m for m in EXTRA_ROWS.get(table, ()) if m not in TABLES[table].methods]


def _git_dirty() -> bool:
    """Uncommitted changes to the code or settings (results/ excluded, as in every provenance record)."""
    from ..provenance import git_state

    return git_state().get("dirty") is not False


def _run_figure(name: str, params: dict, *, dry_run: bool, say) -> bool:
    import papermill

    from ..paths import standin_results_base

    slug = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(str(v) for v in params.values())).strip("_")
    out = standin_results_base(SIZE) / "executed" / f"{name}__{slug}.ipynb"
    params = {**params, "standin_size": SIZE} if name != "table10_cost" else params
    say(f"[{name}] {params} -> {shown_path(out)}")
    if dry_run:
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(out), parameters=params,
                                   kernel_name="python3", progress_bar=False, cwd=str(REPO_ROOT))
    except Exception as exc:  # one figure's failure is reported, the rest still run
        say(f"[{name}] FAILED: {type(exc).__name__}: {str(exc).splitlines()[-1] if str(exc) else ''}")
        return False
    return True


def clear_previous(tables: Sequence[str], *, figures: bool, methods: Optional[Sequence[str]] = None) -> None:
    """Remove the earlier record of what is about to be recorded, so no stale row, figure or cost survives
    (with ``methods``: only those rows of the tables; the tables' other rows stay)."""
    import shutil

    from ..paths import standin_results_base

    base = standin_results_base(SIZE)
    for table in tables:
        if methods is None:
            shutil.rmtree(base / table, ignore_errors=True)
            (base / f"{table}.md").unlink(missing_ok=True)
            continue
        for method in methods:
            for path in (base / table / f"{method}.csv", base / table / f"{method}.json",
                         base / "executed" / f"{table}__{method}.ipynb"):
                path.unlink(missing_ok=True)
    for suffix in (".md", ".csv", ".json"):  # rebuilt from every record at the end
        (base / f"table10_cost{suffix}").unlink(missing_ok=True)
    if figures:
        shutil.rmtree(base / "figures", ignore_errors=True)


def record(tables: Sequence[str], *, figures: bool = True, dry_run: bool = False, allow_dirty: bool = False,
           methods: Optional[Sequence[str]] = None, say=print) -> int:
    from .findings import write_findings
    from .run_table import run_table

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ConfigError(f"unknown tables {unknown}; choose from {', '.join(TABLES)}.")
    if not dry_run and not allow_dirty and _git_dirty():
        raise ConfigError("the git tree has uncommitted changes, so the records could not name the code they came "
                          "from. Fix: commit (or stash) first, or pass --allow-dirty for a trial run.")
    os.environ["SSML_RECORD"] = "1"  # this process and the notebook kernels write results/standin/
    os.environ.setdefault("TQDM_DISABLE", "1")
    if methods is not None:
        tables = [t for t in tables if any(m in rows_of(t) for m in methods)]
        if not tables:
            raise ConfigError(f"no recorded row of the tables is one of {list(methods)}; the rows are "
                              f"{sorted({m for t in TABLES for m in rows_of(t)})}.")
    if not dry_run:
        clear_previous(tables, figures=figures, methods=methods)
    start, failed = time.time(), []
    for table in tables:
        rows = [m for m in rows_of(table) if methods is None or m in methods]
        report = run_table(table, methods=rows, standin_size=SIZE, dry_run=dry_run, log_output=False)
        failed += [f"{table}/{o.method}" for o in report.failed]
    if figures:
        for name, runs in FIGURES.items():
            for params in runs:
                if not _run_figure(name, params, dry_run=dry_run, say=say):
                    failed.append(name)
    if not _run_figure("table10_cost", {"include": ["standin"]}, dry_run=dry_run, say=say):
        failed.append("table10_cost")
    if not dry_run:
        path = write_findings()
        say(f"findings: {shown_path(path)}")
    say(f"recorded in {time.time() - start:.0f} s; {len(failed)} failed" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ssml_lib.experiments.record", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=",".join(TABLES), help="comma-separated tables (default: all tier-1)")
    ap.add_argument("--methods", default=None, help="comma-separated rows: record only these rows of the tables "
                                                    "(the tables' other rows stay as recorded)")
    ap.add_argument("--no-figures", dest="figures", action="store_false")
    ap.add_argument("--no-tables", dest="tables_on", action="store_false",
                    help="only the figures, Table 10 and the findings (from the recorded tables)")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--allow-dirty", action="store_true")
    args = ap.parse_args(argv)
    try:
        return record(args.tables.split(",") if args.tables_on else [], figures=args.figures,
                      dry_run=args.dry_run, allow_dirty=args.allow_dirty,
                      methods=args.methods.split(",") if args.methods else None)
    except SsmlError as exc:
        print(f"record: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
