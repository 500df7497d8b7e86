"""INSTRE (Wang and Jiang 2015) with the query / database split of Iscen et al. (2017), as its files are shared.

``<root>`` (the ``instre/`` folder) holds:

* the images under ``INSTRE-S1/<class>/``, ``INSTRE-S2/<class>/`` and ``INSTRE-M/<class>/`` (the archive's
  layout), named in the split file by their path relative to ``<root>``;
* ``gnd_instre.mat``, the split (a MATLAB file): ``imlist`` (1 x n_db cell of database paths), ``qimlist``
  (1 x n_query cell of query paths; 1,250 queries and 27,293 database images in the real file) and ``gnd``
  (1 x n_query struct array) with ``ok``, the database images of the query's object as **1-based** positions
  in ``imlist`` (the MATLAB evaluation of Iscen et al. ranks from 1), and ``bbx``, the object's box in the query
  as ``[x y w h]`` (the official InsCLR evaluation crops ``(x, y, x + w, y + h)``);
* ``train.txt`` (training only, the official InsCLR INSTRE list): ``<path>,<label>`` a line, paths relative to
  ``<root>``. Labels are read for diagnostics only (unsupervised methods never see them).

Splits: ``db`` (label -1), ``query`` (label = the query's position; cropped to its box unless
``crop_queries=False``) and ``train``. ``gnd[q]`` = {'bbx': [x1, y1, x2, y2], 'ok': 0-based positions, 'junk': []}
as the other retrieval sets hold, so :func:`ssml_lib.eval.instre_map` reads it. ``index_base=0`` reads a split
file whose ``ok`` lists are 0-based (a file written from Python).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import ConfigError, DatasetError, GroundTruthError
from .base import ImageListDataset, check_count, check_options
from .gnd import check_gnd
from .layout import check_choice, require_file, resolve_root
from .revisited import RevisitedDataset, _check_max_side

SPLIT_FILE, TRAIN_LIST = "gnd_instre.mat", "train.txt"
FIX = "Download gnd_instre.mat again (the split of Iscen et al.) into the instre folder; do not edit it."


def _cells(mat: dict, key: str, path: Path) -> list[str]:
    if key not in mat:
        raise GroundTruthError(f"{path} lacks {key!r}; the split file has imlist, qimlist and gnd. {FIX}")
    return [str(np.asarray(c).reshape(-1)[0]) for c in np.asarray(mat[key], dtype=object).reshape(-1)]


def read_split(path: Path, index_base: int = 1) -> tuple[list[str], list[str], list[dict]]:
    """(imlist, qimlist, gnd) from ``gnd_instre.mat``; gnd as documented above (0-based, boxes as corners)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same fix
        raise GroundTruthError(f"{path} cannot be read as a MATLAB file ({type(exc).__name__}: {exc}). {FIX}") from None
    imlist, qimlist = _cells(mat, "imlist", path), _cells(mat, "qimlist", path)
    if "gnd" not in mat:
        raise GroundTruthError(f"{path} lacks 'gnd'. {FIX}")
    entries = np.asarray(mat["gnd"]).reshape(-1)
    if len(entries) != len(qimlist) or entries.dtype.names is None or \
            not {"ok", "bbx"} <= set(entries.dtype.names):
        raise GroundTruthError(f"{path}: 'gnd' must be a struct array with fields ok and bbx, one per query "
                               f"({len(qimlist)}). {FIX}")
    gnd = []
    for q, entry in enumerate(entries):
        ok = np.asarray(entry["ok"], dtype=np.int64).reshape(-1) - index_base
        box = np.asarray(entry["bbx"], dtype=np.float64).reshape(-1)
        if box.size != 4:
            raise GroundTruthError(f"{path}: gnd({q + 1}).bbx must be [x y w h], got {box.tolist()}. {FIX}")
        if ok.size and (ok.min() < 0 or ok.max() >= len(imlist)):
            raise GroundTruthError(f"{path}: gnd({q + 1}).ok holds {ok.min() + index_base}..{ok.max() + index_base}, "
                                   f"outside {index_base}..{len(imlist) - 1 + index_base} (index_base={index_base}). {FIX}")
        x, y, w, h = (float(v) for v in box)
        gnd.append({"bbx": [x, y, x + w, y + h], "ok": ok.tolist(), "junk": []})
    check_gnd(gnd, len(imlist), str(path))
    return imlist, qimlist, gnd


def _train_list(path: Path) -> tuple[list[str], np.ndarray]:
    paths, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, _, label = line.rpartition(",")
        if not name or not label.strip().lstrip("-").isdigit():
            raise DatasetError(f"{path} line {n} must be '<path>,<label>', got {line!r}.")
        paths.append(name.strip())
        labels.append(int(label))
    return paths, np.asarray(labels, dtype=np.int64)


def open_instre(root, split: str, transform: Optional[Callable] = None, *, crop_queries: bool = True,
                max_side: Optional[int] = None, index_base: int = 1, expect_counts: str = "warn"):
    """The ``db``, ``query`` or ``train`` split of INSTRE (layout above)."""
    check_choice("split", split, ("db", "query", "train"), "instre")
    check_options("instre", expect_counts)
    _check_max_side("instre", max_side)
    if index_base not in (0, 1):
        raise ConfigError(f"instre: index_base must be 1 (the MATLAB split file) or 0, got {index_base!r}.")
    root = resolve_root("instre", root, (SPLIT_FILE, TRAIN_LIST), f"the instre folder with {SPLIT_FILE}")
    if split == "train":
        paths, labels = _train_list(require_file("instre", root, TRAIN_LIST, "Write the training list there."))
        ds = ImageListDataset("instre", split, root, [str(root / p) for p in paths], labels, transform)
    else:
        imlist, qimlist, gnd = read_split(require_file("instre", root, SPLIT_FILE, FIX), index_base)
        names = imlist if split == "db" else qimlist
        labels = np.full(len(names), -1, dtype=np.int64) if split == "db" else np.arange(len(names))
        ds = RevisitedDataset("instre", split, root, [str(root / n) for n in names], labels, transform,
                              crop_queries=bool(crop_queries), max_side=max_side)
        ds.gnd, ds.imlist, ds.qimlist, ds.protocol = gnd, imlist, qimlist, "old"
        ds.gnd_file, ds.n_db = root / SPLIT_FILE, len(imlist)
        ds.bbx = np.array([g["bbx"] for g in gnd], dtype=np.float64).reshape(-1, 4)
    missing = next((p for p in ds.paths[:50] if not Path(p).is_file()), None)
    if missing is not None:
        raise DatasetError(f"instre: {missing} is listed but absent. Extract the INSTRE archive into {root}.")
    check_count("instre", split, len(ds), expect_counts)
    return ds


__all__ = ["SPLIT_FILE", "TRAIN_LIST", "open_instre", "read_split"]
