"""Google Landmarks v2 training images from ``train_clean.csv`` / ``train.csv`` or a class-subset file.

Formats: README (Real data); the subset recipe: docs/protocols.md (GLDv2). Image ``<id>`` lives at
``train/<id[0]>/<id[1]>/<id[2]>/<id>.jpg`` (official extraction) or ``<id[0]>/<id[1]>/<id[2]>/<id>.jpg``
directly under root (InsCLR's layout); ``image_layout='auto'`` detects which.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import ConfigError, DatasetError
from ..io import sha256_file
from .base import ImageListDataset, check_count, check_options
from .layout import check_choice, require_file, resolve_root

CLEAN_HEADER = "landmark_id,images"
SOURCES = {"train_clean": "train_clean.csv", "train": "train.csv"}
LAYOUTS = {"train": "train", "flat": ""}  # layout -> folder under root that holds a/b/c/


def image_relpath(image_id: str, layout: str = "train") -> str:
    """Path of a GLDv2 image relative to root, e.g. '0123...' -> 'train/0/1/2/0123....jpg'."""
    prefix = LAYOUTS[layout]
    rel = f"{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"
    return f"{prefix}/{rel}" if prefix else rel


def read_clean_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read a file in train_clean format; returns (landmark id per image, image ids), in file order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != CLEAN_HEADER:
        raise DatasetError(
            f"gldv2: {path} must start with the header '{CLEAN_HEADER}' (train_clean format: one row per landmark, "
            "images space-separated). Use the official train_clean.csv or a file from make_gldv2_subset."
        )
    labels, ids = [], []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        head, _, images = line.partition(",")
        try:
            lid = int(head)
        except ValueError:
            raise DatasetError(f"gldv2: line {n} of {path} does not start with an integer landmark_id: {line[:80]!r}")
        row = images.split()
        ids.extend(row)
        labels.extend([lid] * len(row))
    return np.asarray(labels, dtype=np.int64), ids


def read_train_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read train.csv (id,url,landmark_id); returns (landmark id per image, image ids), in file order."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, usecols=["id", "landmark_id"], dtype={"id": str, "landmark_id": np.int64})
    except ValueError as exc:
        raise DatasetError(
            f"gldv2: {path} is not in train.csv format (header id,url,landmark_id; integer landmark ids): {exc}. "
            "Use the official train.csv."
        ) from None
    return frame["landmark_id"].to_numpy(np.int64), frame["id"].tolist()


def check_image_ids(path: Path, ids: list[str]) -> None:
    bad = next((i for i in ids if len(i) < 3 or "/" in i or "\\" in i), None)
    if bad is not None:
        raise DatasetError(f"gldv2: {path} holds the image id {bad!r}; ids are 16 hex characters. Fix the file.")


def check_min_images(min_images) -> None:
    if min_images is None:
        return
    if isinstance(min_images, bool) or not isinstance(min_images, (int, np.integer)) or min_images < 1:
        raise ConfigError(f"gldv2: min_images must be a positive integer or None (InsCLR uses 15), got {min_images!r}.")


def filter_min_images(labels: np.ndarray, min_images: Optional[int]) -> np.ndarray:
    """Boolean mask of items whose class has at least ``min_images`` items (InsCLR keeps classes with >= 15)."""
    check_min_images(min_images)
    if min_images is None:
        return np.ones(len(labels), dtype=bool)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse] >= min_images


def class_index_in_file_order(labels: np.ndarray) -> np.ndarray:
    """Remap labels to 0..C-1 by order of first appearance in the file (InsCLR's convention)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def detect_layout(root: Path, ids: list[str], layout: str = "auto") -> str:
    """'train' if images are under root/train/, 'flat' if a/b/c/ folders sit directly under root."""
    check_choice("image_layout", layout, ("auto", "train", "flat"), "gldv2")
    if layout != "auto":
        return layout
    if (root / "train").is_dir():
        return "train"
    if any((root / i[0] / i[1] / i[2]).is_dir() for i in ids[:100]):
        return "flat"
    raise DatasetError(
        f"gldv2: no images found under {root}/train/<a>/<b>/<c>/ (official layout) nor {root}/<a>/<b>/<c>/ "
        "(InsCLR layout). Extract the images_*.tar archives into <root>/train/, or pass image_layout explicitly."
    )


def _load_list(root: Path, source: str, subset_file) -> tuple[Path, np.ndarray, list[str], Optional[dict]]:
    info = None
    if subset_file is not None:
        path = Path(subset_file).expanduser()
        if not path.is_absolute() and not path.exists() and (root / path).exists():
            path = root / path
        if not path.is_file():
            raise DatasetError(f"gldv2: subset_file {subset_file} does not exist. Write one with "
                               "ssml_lib.data.make_gldv2_subset(root, out_file) or pass the path of yours.")
        labels, ids = read_clean_csv(path)
        info = _check_sidecar(path)
    else:
        check_choice("source", source, tuple(SOURCES), "gldv2")
        path = require_file("gldv2", root, SOURCES[source],
                            f"Download {SOURCES[source]} into root, or pass source=/subset_file= for another list.")
        labels, ids = read_clean_csv(path) if source == "train_clean" else read_train_csv(path)
    check_image_ids(path, ids)
    return path, labels, ids, info


def _check_sidecar(path: Path) -> Optional[dict]:
    sidecar = Path(str(path) + ".json")
    if not sidecar.is_file():
        return None
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError:
        warnings.warn(f"gldv2: ignoring {sidecar}, which is not valid JSON.", stacklevel=4)
        return None
    if info.get("sha256") and info["sha256"] != sha256_file(path):
        warnings.warn(f"gldv2: {path} no longer matches the sha256 in {sidecar.name}; it was edited after it was "
                      "drawn. Redraw it with make_gldv2_subset or delete the stale sidecar.", stacklevel=4)
    return info


def open_gldv2(
    root, split: str = "train", transform: Optional[Callable] = None, *, source: str = "train_clean",
    min_images: Optional[int] = None, subset_file=None, image_layout: str = "auto", label_convention: str = "file",
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """GLDv2 training images; ``labels`` are raw landmark ids (``label_convention='class_index'`` gives 0..C-1).

    ``class_index`` always holds the 0..C-1 remap in file order (InsCLR). ``subset_file`` (train_clean format,
    e.g. from :func:`make_gldv2_subset`) replaces ``source``; ``min_images`` keeps classes with that many images.
    """
    name = "gldv2"
    check_choice("split", split, ("train",), name)
    check_options(name, expect_counts, label_convention, ("file", "class_index"))
    check_min_images(min_images)
    if subset_file is None:
        check_choice("source", source, tuple(SOURCES), name)
    root = resolve_root(name, root, ("train_clean.csv", "train.csv", "train"),
                        "the GLDv2 folder with train_clean.csv and/or train.csv")
    list_path, labels, ids, subset_info = _load_list(root, source, subset_file)
    keep = filter_min_images(labels, min_images)
    labels, ids = labels[keep], [i for i, k in zip(ids, keep) if k]
    if not ids:
        raise DatasetError(f"gldv2: {list_path} lists no images" + (f" of classes with >= {min_images} images"
                           if min_images else "") + ". Use a larger list or a smaller min_images.")
    layout = detect_layout(root, ids, image_layout)
    class_index = class_index_in_file_order(labels)
    ds = ImageListDataset(name, split, root, [str(root / image_relpath(i, layout)) for i in ids],
                          class_index if label_convention == "class_index" else labels, transform)
    ds.landmark_ids, ds.class_index, ds.image_ids = labels, class_index, ids
    ds.per_item = ds.per_item + ("landmark_ids", "class_index", "image_ids")
    # subset_info: the sidecar JSON of a drawn subset (seed, N, n, sha256...), None for the official lists.
    ds.list_file, ds.image_layout, ds.subset_info = list_path, layout, subset_info
    if subset_file is None:
        key = source + ("_min15" if min_images == 15 else "")
        if min_images in (None, 15):
            check_count(name, key, len(ds), expect_counts)
    return ds.apply_skip(skip)

