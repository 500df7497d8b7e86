"""mAP of the original Oxford5k / Paris6k protocol (and their 105k / 106k versions), all queries at once.

Per query: positives are ``gnd[q]['ok']`` (good and ok), ``gnd[q]['junk']`` is deleted from the ranking, and AP
is the trapezoid rule over the precision-recall curve that the original Oxford evaluation code uses (the same
rule as :func:`ssml_lib.eval.trapezoid_ap`): each positive adds (1/n) * (precision before it + precision after
it) / 2, with precision 1 before the first item and n = the number of positives listed. A query without
positives is left out of the mean. Rankings are stable (equal scores: the lower database index first).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._inputs import EvalInputError
from .revisited import validate_gnd

_BLOCK_CELLS = 1 << 22  # queries are ranked in blocks of about this many (query, image) cells


def _masks(gnd: list[dict], rows: range, n_db: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.zeros((len(rows), n_db), dtype=bool)
    junk = np.zeros((len(rows), n_db), dtype=bool)
    for mask, key in ((pos, "ok"), (junk, "junk")):
        lists = [gnd[q][key] for q in rows]
        which = np.repeat(np.arange(len(rows)), [len(v) for v in lists])
        mask[which, np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)] = True
    return pos, junk


def original_aps(scores: Any, gnd: Sequence[dict]) -> np.ndarray:
    """Per-query trapezoid AP (NaN where 'ok' is empty) for similarities ``scores`` (n_query, n_db)."""
    s = scores.detach().cpu().numpy() if hasattr(scores, "detach") else np.asarray(scores)
    if s.ndim != 2 or s.shape[0] != len(gnd):
        raise EvalInputError(f"scores must be (n_query, n_db) with n_query = len(gnd) = {len(gnd)}, got shape "
                             f"{s.shape}; transpose a (n_db, n_query) matrix.")
    if not np.isfinite(s).all():
        raise EvalInputError("scores contain NaN or inf; check the descriptors before ranking.")
    gnd = validate_gnd(gnd, s.shape[1], keys=("ok", "junk"))
    n_db = s.shape[1]
    n_ok = np.asarray([g["ok"].size for g in gnd], dtype=np.float64)
    aps = np.full(len(gnd), np.nan)
    step = max(1, _BLOCK_CELLS // max(n_db, 1))
    for start in range(0, len(gnd), step):  # blocks of queries bound the memory; each block is one array pass
        rows = range(start, min(start + step, len(gnd)))
        pos, junk = _masks(gnd, rows, n_db)
        order = np.argsort(-s[start:rows.stop], axis=1, kind="stable")
        pos = np.take_along_axis(pos, order, axis=1)
        junk = np.take_along_axis(junk, order, axis=1)
        place = np.arange(n_db) - np.cumsum(junk, axis=1)  # position once the junk before it is deleted
        found = np.cumsum(pos, axis=1)  # j: this is the j-th positive
        with np.errstate(invalid="ignore", divide="ignore"):  # junk cells (place -1 possible) are masked out
            after = found / (place + 1)
            before = np.where(place > 0, (found - 1) / np.maximum(place, 1), 1.0)
            total = np.where(pos, (before + after) / 2, 0.0).sum(axis=1)
            aps[start:rows.stop] = np.where(n_ok[start:rows.stop] > 0, total / n_ok[start:rows.stop], np.nan)
    return aps


def original_map(scores: Any, gnd: Sequence[dict]) -> dict:
    """{'map': mean AP over the queries with positives, 'ap': per-query AP} (fractions; papers print 100x)."""
    aps = original_aps(scores, gnd)
    valid = ~np.isnan(aps)
    return {"map": float(aps[valid].mean()) if valid.any() else float("nan"), "ap": aps}


def instre_map(scores: Any, gnd: Sequence[dict]) -> dict:
    """INSTRE mAP as Iscen et al. evaluate their split: the same trapezoid AP over each query's ``ok`` list (no
    junk in that split), averaged over every query. Their code counts a query without positives as AP 0, so
    such a query is refused here rather than left out. {'map', 'ap'} as :func:`original_map`."""
    empty = [q for q, g in enumerate(gnd) if len(g.get("ok", [])) == 0]
    if empty:
        raise EvalInputError(f"INSTRE query {empty[0]} has no positives ({len(empty)} in all); every query of the "
                             "split has some. Check the split file and the database list.")
    return original_map(scores, [{"ok": g["ok"], "junk": g.get("junk", [])} for g in gnd])
