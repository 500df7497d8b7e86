"""Validate revisited Oxford/Paris ground truth (``gnd_<name>.pkl``; docs/protocols.md, Revisited).

A damaged or hand-edited gnd file silently changes every mAP, so it is checked in full before any image is
read: keys, list types, index ranges, pairwise disjointness of easy/hard/junk (or ok/junk), and bbx shape.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import GroundTruthError

REVISITED_KEYS = ("bbx", "easy", "hard", "junk")
OLD_KEYS = ("bbx", "ok", "junk")  # cirtorch's gnd_oxford5k.pkl / gnd_paris6k.pkl
FIX = ("Re-download the official gnd file from the revisitop site (cmp.felk.cvut.cz/revisitop) or regenerate it; "
       "do not edit it by hand.")


def _index_list(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise GroundTruthError(f"{where} must be a list of integer indices, got {type(value).__name__}. {FIX}")
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise GroundTruthError(
            f"{where} must be a flat list of integers, got dtype {arr.dtype} shape {arr.shape}. {FIX}")
    return arr.astype(np.int64)


def _check_bbx(value: Any, where: str) -> None:
    try:
        box = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GroundTruthError(f"{where} must be 4 numbers [x1, y1, x2, y2], got {value!r}. {FIX}") from None
    if box.shape != (4,) or not np.isfinite(box).all():
        raise GroundTruthError(f"{where} must be 4 finite numbers [x1, y1, x2, y2], got {value!r}. {FIX}")
    if box[2] < box[0] or box[3] < box[1]:
        raise GroundTruthError(f"{where} = {value!r} has x2 < x1 or y2 < y1; the box is [x1, y1, x2, y2]. {FIX}")


def check_gnd(gnd: Sequence[dict], n_db: int, source: str = "gnd") -> str:
    """Check every query entry; returns the protocol, 'revisited' (easy/hard/junk) or 'old' (ok/junk).

    Raises GroundTruthError naming the query index and key.
    """
    if not isinstance(gnd, (list, tuple)):
        raise GroundTruthError(
            f"{source}: 'gnd' must be a list of dicts (one per query), got {type(gnd).__name__}. {FIX}")
    protocol = "old" if gnd and isinstance(gnd[0], dict) and "ok" in gnd[0] else "revisited"
    keys = OLD_KEYS if protocol == "old" else REVISITED_KEYS
    lists = keys[1:]
    for q, entry in enumerate(gnd):
        where = f"{source}: gnd[{q}]"
        if not isinstance(entry, dict):
            raise GroundTruthError(f"{where} must be a dict with keys {list(keys)}, got {type(entry).__name__}. {FIX}")
        missing = [k for k in keys if k not in entry]
        if missing:
            raise GroundTruthError(
                f"{where} lacks key(s) {missing}; every entry of a {protocol}-protocol file has {list(keys)}. {FIX}")
        _check_bbx(entry["bbx"], f"{where}['bbx']")
        arrays = {k: _index_list(entry[k], f"{where}[{k!r}]") for k in lists}
        for k, arr in arrays.items():
            bad = arr[(arr < 0) | (arr >= n_db)]
            if bad.size:
                raise GroundTruthError(
                    f"{where}[{k!r}] holds index {int(bad[0])}, outside the database range 0..{n_db - 1} "
                    f"(len(imlist) = {n_db}). The gnd file does not belong to this image list. {FIX}")
        for i, a in enumerate(lists):
            for b in lists[i + 1:]:
                both = np.intersect1d(arrays[a], arrays[b])
                if both.size:
                    raise GroundTruthError(
                        f"{where}: index {int(both[0])} is in both {a!r} and {b!r}; the lists must be disjoint. {FIX}")
    return protocol


def _name_list(value: Any, key: str, source: str) -> list[str]:
    if not isinstance(value, (list, tuple, np.ndarray)) or not all(isinstance(v, str) for v in value):
        raise GroundTruthError(f"{source}: {key!r} must be a list of image names (str). {FIX}")
    return [str(v) for v in value]


def check_gnd_file(data: Any, path: Path) -> tuple[list[str], list[str], list[dict], str]:
    """Validate the loaded pickle; returns (imlist, qimlist, gnd, protocol)."""
    source = str(path)
    if not isinstance(data, dict):
        raise GroundTruthError(f"{source} holds a {type(data).__name__}, expected a dict with keys "
                               f"imlist, qimlist, gnd. {FIX}")
    missing = [k for k in ("imlist", "qimlist", "gnd") if k not in data]
    if missing:
        raise GroundTruthError(f"{source} lacks key(s) {missing}; a gnd file has imlist, qimlist and gnd. {FIX}")
    imlist = _name_list(data["imlist"], "imlist", source)
    qimlist = _name_list(data["qimlist"], "qimlist", source)
    gnd = data["gnd"]
    if not isinstance(gnd, (list, tuple)) or len(gnd) != len(qimlist):
        length = len(gnd) if isinstance(gnd, (list, tuple)) else type(gnd).__name__
        raise GroundTruthError(f"{source}: 'gnd' must be a list with one entry per query ({len(qimlist)} in "
                               f"qimlist), got {length}. {FIX}")
    protocol = check_gnd(list(gnd), len(imlist), source)
    return imlist, qimlist, list(gnd), protocol
