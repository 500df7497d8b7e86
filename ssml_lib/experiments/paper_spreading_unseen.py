"""The Spreading paper's Tables 3-6 (unseen test classes): several rows of one table in one notebook call.

Each row is a row of the table runner (:func:`~.runner.run_table_row`: the same data, initial network, training,
R@K + NMI protocol, results and provenance as the thesis's CUB / Cars / SOP tables); this module only runs the
rows the notebook names, in order, after checking every row's parameters, and shows them together beside the
paper's numbers. The tables are ``PAPER_TABLES`` entries (:mod:`.tables`); ``pretrained`` is the paper's
"Initial (FC)" / "Random" row (``pretrained_output: fc``, set by the tables' params files and applied on the
stand-in too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..config import notebook_parameters
from ..errors import ConfigError
from ..paths import REPO_ROOT, shown_path
from .runner import RowResult, resolve_params, run_table_row
from .tables import get_table

UNSEEN_TABLES = ("paper_spreading_table3_cub", "paper_spreading_table4_sop", "paper_spreading_table5_cars",
                 "paper_spreading_table6_sop_scratch")


@dataclass
class PaperRows:
    table: str
    rows: list                 # RowResult per method, in the order run
    side_by_side: pd.DataFrame  # every paper row with ours beside it (our rows of this run filled in)
    markdown: str              # the table's Markdown after the last row (every row in its results folder)

    @property
    def standin(self) -> bool:
        return all(r.standin for r in self.rows)


def row_files(table: str, methods: list, params_file: Any, paper_scale: bool) -> dict:
    """method -> its params file: ``params_file`` (one method only), ``params/<table>/<method>.yaml`` with
    ``paper_scale``, else None (the stand-in layers)."""
    if params_file is not None and paper_scale:
        raise ConfigError("params_file and paper_scale both given. Fix: give one (paper_scale reads "
                          f"params/{table}/<method>.yaml for each row).")
    if params_file is not None and len(methods) != 1:
        raise ConfigError(f"params_file {params_file!r} is one row's file but {len(methods)} rows were asked "
                          f"for ({methods}). Fix: -p paper_scale True (each row reads its own file), or one method.")
    if paper_scale:
        return {m: shown_path(REPO_ROOT / "params" / table / f"{m}.yaml") for m in methods}
    return {m: params_file for m in methods}


def run_paper_rows(table: str, namespace: Mapping[str, Any], *, progress: bool = True) -> PaperRows:
    """The notebooks' one call: ``method`` (a name or a list), ``paper_scale`` and ``params_file`` are read
    here; every other parameter goes to each row, checked by the typed configs before any row runs."""
    spec = get_table(table)
    params = {k: v for k, v in notebook_parameters(namespace).items() if v is not None}
    method = params.pop("method", list(spec.methods[:2]))
    methods = [method] if isinstance(method, str) else list(method)
    unknown = [m for m in methods if m not in spec.methods]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise ConfigError(f"method {method!r}: the rows of {table} are {', '.join(spec.methods)} (each once). "
                          "Fix: e.g. -p method '[\"pretrained\", \"spreading\"]'.")
    files = row_files(table, methods, params.pop("params_file", None), bool(params.pop("paper_scale", False)))
    for m in methods:  # every row's parameters checked before anything trains or is written
        resolve_params(table, files[m], {**params, "method": m})
    rows: list[RowResult] = [run_table_row(table, files[m], {**params, "method": m}, progress=progress)
                             for m in methods]
    ours = pd.concat([r.rows.assign(method=r.method) for r in rows], ignore_index=True)
    from ..results import side_by_side

    return PaperRows(table, rows, side_by_side(table, ours), rows[-1].markdown)


def show_paper_rows(result: PaperRows) -> None:
    """Display the rows run (stand-in label), every paper row beside ours, and the table's Markdown."""
    from IPython.display import Markdown, display

    label = ("STAND-IN DATA (synthetic; not comparable with the paper)" if result.standin else "real data")
    display(Markdown(f"**{result.table} / {', '.join(r.method for r in result.rows)}: {label}**"))
    display(result.side_by_side)
    display(Markdown(result.markdown))


__all__ = ["PaperRows", "UNSEEN_TABLES", "row_files", "run_paper_rows", "show_paper_rows"]
