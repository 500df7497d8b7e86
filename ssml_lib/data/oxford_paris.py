"""The original Oxford5k / Paris6k (Philbin et al.) in their distributed layout, and the +100k Flickr versions.

``<root>`` (the dataset's own folder, ``oxford5k/`` or ``paris6k/``) holds:

* ``jpg/``: the images, ``<name>.jpg``, flat (Oxford) or one sub-folder per landmark (Paris as in its archives);
  every ``.jpg`` below ``jpg/`` is a database image, sorted by name;
* ``gt/``: per query ``<landmark>_<k>``, the text files ``_query.txt`` (one line ``<image> x1 y1 x2 y2``; Oxford
  names carry the prefix ``oxc1_``), ``_good.txt``, ``_ok.txt`` and ``_junk.txt`` (one image name per line).

The protocol (docs/paper_datasets.md): positives = good and ok, junk ignored, the query image stays in the
database. ``gnd[q]`` = {'bbx', 'ok', 'junk'} with database indices, as the old-protocol gnd pickles hold, so
:func:`ssml_lib.eval.original_map` and :func:`ssml_lib.eval.compute_map` read it. A root with the packed pickle
``gnd_<name>.pkl`` instead of ``gt/`` is read by :func:`open_revisited`.

``oxford105k`` / ``paris106k``: the same queries and ground truth; the ``db`` split appends the images below
``<distractor_root>/jpg/`` (default: the sibling folder ``flickr100k/``), sorted by relative path, label -1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import ConfigError, DatasetError, GroundTruthError
from .base import check_count, check_options
from .gnd import check_gnd
from .layout import check_choice, require_dir, resolve_root
from .revisited import RevisitedDataset, _check_max_side, open_revisited

BASE = {"oxford5k": "oxford5k", "paris6k": "paris6k", "oxford105k": "oxford5k", "paris106k": "paris6k"}
ORIGINAL_NAMES = tuple(BASE)
DISTRACTOR_FOLDER = "flickr100k"
QUERY_PREFIX = "oxc1_"  # Oxford's _query.txt names the image with this prefix; Paris's do not
GT_FIX = "Re-extract the ground-truth archive (gt_files_170407.tgz / paris_120310.tgz) into gt/; do not edit it."


def list_images(folder: Path) -> dict[str, Path]:
    """Image name (file stem) -> path for every ``.jpg`` below ``folder``, sorted by name; names must be unique."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.jpg")):
        if path.stem in found:
            raise DatasetError(f"two images are named {path.stem}: {found[path.stem]} and {path}. Names must be "
                               "unique across the landmark sub-folders; remove the copy.")
        found[path.stem] = path
    return dict(sorted(found.items()))


def _read_names(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(dict.fromkeys(n[:-4] if n.lower().endswith(".jpg") else n for n in names))  # set semantics


def _read_query(path: Path) -> tuple[str, list[float]]:
    fields = path.read_text(encoding="utf-8").split()
    try:
        box = [float(v) for v in fields[1:5]]
    except ValueError:
        box = []
    if len(fields) != 5 or len(box) != 4:
        raise GroundTruthError(f"{path} must hold one line '<image> x1 y1 x2 y2', got {' '.join(fields)!r}. "
                               f"{GT_FIX}")
    image = fields[0][len(QUERY_PREFIX):] if fields[0].startswith(QUERY_PREFIX) else fields[0]
    return image, box


def read_ground_truth(gt: Path, names: list[str]) -> tuple[list[str], list[str], list[dict]]:
    """(query ids, query image names, gnd) from the gt text files; indices are positions in ``names``."""
    query_files = sorted(gt.glob("*_query.txt"))
    if not query_files:
        raise DatasetError(f"no <query>_query.txt file in {gt}. {GT_FIX}")
    position = {n: i for i, n in enumerate(names)}
    qids, qimlist, gnd = [], [], []
    for qfile in query_files:
        qid = qfile.name[:-len("_query.txt")]
        image, bbx = _read_query(qfile)
        lists = {}
        for kind in ("good", "ok", "junk"):
            path = gt / f"{qid}_{kind}.txt"
            if not path.is_file():
                raise DatasetError(f"missing {path.name} in {gt} (every query has _good, _ok and _junk). {GT_FIX}")
            listed = _read_names(path)
            unknown = [n for n in listed if n not in position]
            if unknown:
                raise GroundTruthError(f"{path} names {unknown[0]} ({len(unknown)} in all), which is not in the "
                                       "image folder. Restore the missing images, or check that gt/ and jpg/ "
                                       "belong to the same dataset.")
            lists[kind] = [position[n] for n in listed]
        if image not in position:
            raise GroundTruthError(f"{qfile} names the query image {image}, which is not in the image folder.")
        ok = list(dict.fromkeys(lists["good"] + lists["ok"]))
        qids.append(qid)
        qimlist.append(image)
        gnd.append({"bbx": bbx, "ok": ok, "junk": lists["junk"]})
    check_gnd(gnd, len(names), str(gt))
    return qids, qimlist, gnd


def open_oxford_paris(
    name: str, root, split: str, transform: Optional[Callable] = None, *, crop_queries: bool = True,
    max_side: Optional[int] = None, image_dir: str = "jpg", gt_dir: str = "gt", distractor_root=None,
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> RevisitedDataset:
    """The ``db`` or ``query`` split of oxford5k, paris6k, oxford105k or paris106k (original protocol).

    Query items are cropped to their box (``crop_queries``, PIL semantics as for the revisited sets); labels are
    -1 for database images and the query's position in ``gnd`` for queries. ``skip`` is refused: gnd holds
    positions in the image list; remove unreadable files (Paris ships 20 corrupt ones) from ``jpg/`` instead.
    """
    check_choice("dataset", name, ORIGINAL_NAMES)
    check_choice("split", split, ("db", "query"), name)
    if skip:
        raise ConfigError(f"{name}: skip is not supported, because gnd indices are positions in the image list. "
                          "Delete the unreadable files from jpg/ (they are then left out of the list) or restore them.")
    if distractor_root is not None and name == BASE[name]:
        raise ConfigError(f"{name}: distractor_root is for oxford105k / paris106k only.")
    _check_max_side(name, max_side)
    check_options(name, expect_counts)
    base = BASE[name]
    root = resolve_root(name, root, (gt_dir, f"gnd_{base}.pkl"),
                        f"the {base} folder with {gt_dir}/ (the ground-truth text files) and {image_dir}/")
    if (root / gt_dir).is_dir():
        ds = _from_text_files(base, root, split, transform, crop_queries, max_side, image_dir, gt_dir)
    else:  # the packed old-protocol pickle
        ds = open_revisited(base, root, split, transform, crop_queries=crop_queries, max_side=max_side,
                            image_dir=image_dir, expect_counts="off")
    ds.name = name
    ds.n_db = len(ds.imlist)
    if name != base:
        ds.distractor_root = Path(distractor_root).expanduser() if distractor_root else root.parent / DISTRACTOR_FOLDER
        if split == "db":
            _append_distractors(ds, name, ds.distractor_root)
    check_count(name, split, len(ds), expect_counts)
    return ds


def _from_text_files(base, root, split, transform, crop_queries, max_side, image_dir, gt_dir) -> RevisitedDataset:
    folder = require_dir(base, root, image_dir, "Extract the image archive(s) there; Paris may keep its "
                                                "per-landmark sub-folders.")
    images = list_images(folder)
    if not images:
        raise DatasetError(f"{base}: no .jpg image below {folder}. Extract the image archive(s) there.")
    imlist = list(images)
    qids, qimlist, gnd = read_ground_truth(root / gt_dir, imlist)
    names = imlist if split == "db" else qimlist
    labels = np.full(len(names), -1, dtype=np.int64) if split == "db" else np.arange(len(names))
    ds = RevisitedDataset(base, split, root, [str(images[n]) for n in names], labels, transform,
                          crop_queries=bool(crop_queries), max_side=max_side)
    ds.gnd, ds.imlist, ds.qimlist, ds.query_ids, ds.protocol = gnd, imlist, qimlist, qids, "old"
    ds.gnd_file = root / gt_dir
    ds.bbx = np.array([g["bbx"] for g in gnd], dtype=np.float64).reshape(-1, 4)
    return ds


def _append_distractors(ds: RevisitedDataset, name: str, droot: Path) -> None:
    if not droot.is_dir():
        raise DatasetError(f"{name}: the distractor folder {droot} does not exist. Put the 100k Flickr images "
                           f"under <data_root>/{DISTRACTOR_FOLDER}/jpg/ beside the {BASE[name]} folder, or pass "
                           "distractor_root=<folder with jpg/>.")
    folder = require_dir(name, droot, "jpg", "Extract the 100k distractor archive there.")
    paths = sorted(folder.rglob("*.jpg"))
    if not paths:
        raise DatasetError(f"{name}: no .jpg image below {folder}; extract the 100k distractor archive there.")
    ds.paths = ds.paths + [str(p) for p in paths]
    ds.labels = np.concatenate([ds.labels, np.full(len(paths), -1, dtype=np.int64)])
    ds.source_index = np.arange(len(ds.paths), dtype=np.int64)
    ds.distractors = [p.relative_to(folder).as_posix() for p in paths]
