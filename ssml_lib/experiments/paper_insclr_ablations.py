"""The InsCLR paper's ablation tables as data: each row is a set of InsCLR settings (switches of the one method,
never a copy of it), checked and layered like a thesis table row (:func:`resolve_ablation_row`).

Both tables train on GLDv2 and evaluate on rOxford5k / rParis6k, as the thesis's Table 7 does, so a row is a row
of ``table7_gldv2`` with its switches laid over the user's parameters: stand-in scale and the Table 7 method
recipe when there is no ``data_root``, ``params/<table>/<row>.yaml`` at paper scale. A parameter that
contradicts a row's switch is refused (pick the row that has it). docs/paper_insclr_ablations.md maps the rows.

Choices where the paper is silent (all rows share them, so a row differs from another only in its switches):
every trained row runs four cycles, the official schedule's length. Rows A-C are four ``base`` cycles with the
row's batch and memory settings (B is the official base cycle); D-anchor and D are the official schedule,
three official base cycles (as B) and the ``impr`` cycle (in-batch selection on no-aug similarity, memory
mining). Table 2 varies D's mining mode (``impr_mode``). The paper's in-batch threshold T_b = 0.65 (§4.2) is
used wherever selection is on (the official impr config has 0.6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..config import read_params_file
from ..errors import ConfigError
from .row_refusals import PAPER_ROW

BASE_TABLE = "table7_gldv2"  # training set, evaluation sets and stand-in recipe of every row
TABLE1, TABLE2 = "paper_insclr_table1_ablation", "paper_insclr_table2_memory_mining"
T_B = 0.65  # paper §4.2: in-batch threshold on the unaugmented similarity


@dataclass(frozen=True)
class AblationRow:
    label: str                  # the paper's row label
    what: str                   # what the row is, in one line
    settings: Mapping[str, Any]  # method and InsCLR Config values that make the row


_BASE = dict(method="insclr", insclr_stages=("base",) * 4, base_selection_threshold=None)
_D = dict(method="insclr", insclr_stages=("base", "base", "base", "impr"), base_selection_threshold=None,
          base_memory=True, impr_selection_threshold=T_B, impr_use_negative=True, impr_query_set="tuple",
          impr_mode="b+i_tr4_avg0.60_k05")  # the official GLDv2 impr mode


def _mining(mode: str) -> dict:
    return {**_D, "impr_mode": mode}


ROWS: dict[str, dict[str, AblationRow]] = {
    TABLE1: {
        "pretrained": AblationRow("ImageNet", "the initial network, GeM features, no training",
                                  {"method": "pretrained"}),
        "a": AblationRow("A", "nn positives (all N_b tuple images), no memory",
                         {**_BASE, "base_memory": False}),
        "b": AblationRow("B", "A + memory of random negatives", {**_BASE, "base_memory": True}),
        "c": AblationRow("C", "B with in-batch selection (unaugmented similarity >= T_b)",
                         {**_BASE, "base_memory": True, "base_selection_threshold": T_B}),
        "d_anchor": AblationRow("D-anchor", "D, but memory positives mined from the anchor alone",
                                {**_D, "impr_query_set": "anchor"}),
        "d": AblationRow("D", "the full method: in-batch selection, memory mining with the query set", dict(_D)),
    },
    TABLE2: {  # two mining rounds unless named (the paper's caption); k = 5, T_m = 0.6, sparsity at 0.6
        "avg_topk": AblationRow("avg topk", "mean, top-5, no sparsity", _mining("b+i_tr2_avg_k05")),
        "avg_topk_spa": AblationRow("avg topk w/ spa.", "mean of similarities >= 0.6, top-5",
                                    _mining("b+i_tr2_avg0.60_k05")),
        "avg_threshold": AblationRow("avg threshold", "mean, every candidate >= T_m",
                                     _mining("b+i_tr2_avg_t0.60")),
        "max_topk": AblationRow("max topk", "max, top-5, no sparsity", _mining("b+i_tr2_max_k05")),
        "max_topk_spa": AblationRow("max topk w/ spa.", "max of similarities >= 0.6, top-5",
                                    _mining("b+i_tr2_max0.60_k05")),
        "max_threshold": AblationRow("max threshold", "max, every candidate >= T_m",
                                     _mining("b+i_tr2_max_t0.60")),
        "avg_topk_1x": AblationRow("avg topk 1×", "mean, top-5, one round", _mining("b+i_tr1_avg_k05")),
        "avg_topk_4x": AblationRow("avg topk 4×", "mean, top-5, four rounds", _mining("b+i_tr4_avg_k05")),
    },
}
CHEAPEST = {TABLE1: "pretrained", TABLE2: "avg_topk_1x"}


def get_row(table: str, row: str) -> AblationRow:
    if table not in ROWS:
        raise ConfigError(f"unknown ablation table {table!r}; the tables are: {', '.join(ROWS)}.")
    if row not in ROWS[table]:
        raise ConfigError(f"{table} has no row {row!r}. Fix: -p row <one of {', '.join(ROWS[table])}>.")
    return ROWS[table][row]


def _same(a: Any, b: Any) -> bool:
    norm = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)  # noqa: E731  (YAML gives lists)
    return norm(a) == norm(b)


def row_parameters(table: str, row: str, params_file: Optional[str] = None,
                   overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """The flat parameters of one row: the params file, then the overrides, then the row's switches. Refused: a
    value that contradicts a switch, and a paper-scale file (``paper_row``) of another row or without data_root."""
    spec = get_row(table, row)
    values = {**(read_params_file(params_file) if params_file else {}), **dict(overrides or {})}
    paper_row = values.pop(PAPER_ROW, None)
    if paper_row is not None:
        if paper_row != f"{table}/{row}":
            raise ConfigError(f"these paper-scale settings are for {paper_row!r}, not {table}/{row}. Fix: -p row "
                              f"{str(paper_row).split('/')[-1]} (or use params/{table}/{row}.yaml).")
        if values.get("data_root") is None:
            raise ConfigError(f"params/{table}/{row}.yaml is the paper's scale (ResNet-101, 1.2M images) and needs "
                              "real data. Fix: -p data_root /data (stand-in runs take no params file).")
    return layer_settings(f"row {row!r} of {table}", spec, values, f"pick the row that has them "
                          f"({', '.join(ROWS[table])})")


def layer_settings(what: str, spec: AblationRow, values: Mapping[str, Any], fix: str) -> dict:
    """``values`` with the row's settings laid over them; a value that contradicts a setting is refused."""
    clash = sorted(k for k, v in spec.settings.items() if k in values and not _same(values[k], v))
    if clash:
        raise ConfigError(f"{what} sets {', '.join(f'{k}={spec.settings[k]!r}' for k in clash)}; "
                          f"the parameters say otherwise. Fix: drop them, or {fix}.")
    return {**values, **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.settings.items()}}


def resolve_ablation_row(table: str, row: str, params_file: Optional[str] = None,
                         overrides: Optional[Mapping[str, Any]] = None) -> dict:
    """:func:`~.row_params.resolve_params` of :data:`BASE_TABLE` for one row (every config checked)."""
    from .row_params import resolve_params

    return resolve_params(BASE_TABLE, None, row_parameters(table, row, params_file, overrides))


__all__ = ["AblationRow", "BASE_TABLE", "CHEAPEST", "ROWS", "T_B", "TABLE1", "TABLE2", "get_row",
           "layer_settings", "resolve_ablation_row", "row_parameters"]
