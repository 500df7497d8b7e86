"""CUB-200-2011, Cars196 and Stanford Online Products with the zero-shot splits (README, Real data).

First half of the classes trains, second half tests; the datasets' own classification splits and bounding
boxes are ignored. For CUB and Cars, with K = the largest class id in the files, train = ids 1..K//2 and
test = K//2+1..K: on the real files (K = 200, 196) exactly the protocol's 1-100 / 101-200 and 1-98 / 99-196,
and on a stand-in written with fewer classes the same rule still splits it in halves. Labels keep the ids of
the files (PML, Spreading); ``label_convention='zero_based'`` gives STML / Proxy-Anchor's id - 1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import DatasetError
from .base import ImageListDataset, check_count, check_options, relabel
from .layout import check_choice, require_dir, require_file, resolve_root

REAL_CLASS_COUNT = {"cub200": 200, "cars196": 196}  # largest class id in the real files
SOP_HEADER = ["image_id", "class_id", "super_class_id", "path"]


def _read_id_table(name: str, path: Path, kind=str) -> dict[int, object]:
    """Parse '<int id> <value>' lines (CUB's files: space-separated, no header)."""
    table = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        try:
            table[int(parts[0])] = kind(parts[1].strip())
        except (IndexError, ValueError):
            raise DatasetError(
                f"{name}: line {n} of {path} is not '<image_id> <value>': {line!r}. Re-extract the official archive."
            ) from None
    return table


def class_split(name: str, labels: np.ndarray, split: str) -> tuple[np.ndarray, tuple[int, int]]:
    """(file positions of the split's images, its inclusive class-id range): ids 1..K//2 train, the rest test."""
    if labels.size == 0:
        raise DatasetError(f"{name}: the list files hold no images. Re-extract the official archive.")
    if labels.min() < 1:
        raise DatasetError(f"{name}: class id {labels.min()} found; class ids start at 1. Use the official files.")
    top = int(labels.max())
    span = (1, top // 2) if split == "train" else (top // 2 + 1, top)
    keep = np.flatnonzero((labels >= span[0]) & (labels <= span[1]))
    if keep.size == 0:
        raise DatasetError(
            f"{name} {split}: no image has a class id in {span[0]}..{span[1]} (the {split} half of ids 1..{top}; "
            f"the real dataset has {REAL_CLASS_COUNT[name]} classes). The list files are incomplete: re-extract them.")
    return keep, span


def open_cub200(
    root, split: str, transform: Optional[Callable] = None, *, label_convention: str = "file",
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """CUB-200-2011: classes 1-100 train, 101-200 test (halves of the ids), images in ``images.txt`` order."""
    name = "cub200"
    check_choice("split", split, ("train", "test"), name)
    check_options(name, expect_counts, label_convention)
    root = resolve_root(name, root, ("images.txt", "image_class_labels.txt"), "CUB_200_2011/ with images.txt")
    fix = "Re-extract CUB_200_2011.tgz so that root holds images.txt, image_class_labels.txt and images/."
    paths = _read_id_table(name, require_file(name, root, "images.txt", fix), str)
    classes = _read_id_table(name, require_file(name, root, "image_class_labels.txt", fix), int)
    images = require_dir(name, root, "images", fix)
    missing = [i for i in paths if i not in classes]
    if missing:
        raise DatasetError(
            f"{name}: image ids {missing[:5]} of images.txt have no line in image_class_labels.txt. {fix}"
        )
    ids = list(paths)
    all_labels = np.array([classes[i] for i in ids], dtype=np.int64)
    keep, span = class_split(name, all_labels, split)
    ds = ImageListDataset(name, split, root, [str(images / paths[ids[i]]) for i in keep],
                          relabel(all_labels[keep], label_convention), transform)
    ds.image_ids = np.array([ids[i] for i in keep], dtype=np.int64)
    ds.per_item = ds.per_item + ("image_ids",)
    ds.class_range = span  # inclusive file class ids of this split, for provenance
    check_count(name, split, len(ds), expect_counts)
    return ds.apply_skip(skip)


def _read_cars_annotations(name: str, path: Path) -> tuple[list[str], np.ndarray]:
    import scipy.io

    fix = "Use the official cars_annos.mat (MATLAB v5 file with an 'annotations' struct array)."
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=True)
    except NotImplementedError:
        raise DatasetError(f"{name}: {path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read. {fix}") from None
    except Exception as exc:  # scipy raises several unrelated types on corrupt files
        raise DatasetError(f"{name}: cannot read {path} ({exc}). {fix}") from None
    if "annotations" not in mat:
        raise DatasetError(f"{name}: {path} has no 'annotations' variable. {fix}")
    ann = np.atleast_1d(mat["annotations"])
    fields = ann.dtype.names or ()
    # The references read fields by position (0 = relative_im_path, 5 = class); we read by name and insist on
    # those names, so a re-packaged file with another field order is caught rather than mislabelled.
    if "relative_im_path" not in fields or "class" not in fields:
        raise DatasetError(
            f"{name}: {path} annotations have fields {list(fields)}, expected relative_im_path, bbox_x1, bbox_y1, "
            f"bbox_x2, bbox_y2, class, test. {fix}"
        )
    rel = [str(p) for p in ann["relative_im_path"]]
    labels = np.asarray(ann["class"], dtype=np.int64).reshape(-1)
    return rel, labels


def open_cars196(
    root, split: str, transform: Optional[Callable] = None, *, label_convention: str = "file",
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """Cars196: classes 1-98 train, 99-196 test (halves of the ids), in ``cars_annos.mat`` order.

    The annotations' ``test`` flag (classification split) and bounding boxes are ignored.
    """
    name = "cars196"
    check_choice("split", split, ("train", "test"), name)
    check_options(name, expect_counts, label_convention)
    root = resolve_root(name, root, ("cars_annos.mat",), "the Cars196 folder with cars_annos.mat and car_ims/")
    fix = "Put cars_annos.mat and the car_ims/ folder from the official archive side by side in root."
    rel, all_labels = _read_cars_annotations(name, require_file(name, root, "cars_annos.mat", fix))
    require_dir(name, root, "car_ims", fix)
    keep, span = class_split(name, all_labels, split)
    ds = ImageListDataset(name, split, root, [str(root / rel[i]) for i in keep],
                          relabel(all_labels[keep], label_convention), transform)
    ds.class_range = span
    check_count(name, split, len(ds), expect_counts)
    return ds.apply_skip(skip)


def open_sop(
    root, split: str, transform: Optional[Callable] = None, *, label_convention: str = "file",
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """Stanford Online Products: ``Ebay_train.txt`` / ``Ebay_test.txt`` rows in file order.

    Also sets ``super_labels`` (the category, 1-12) and ``image_ids``.
    """
    name = "sop"
    check_choice("split", split, ("train", "test"), name)
    check_options(name, expect_counts, label_convention)
    root = resolve_root(name, root, ("Ebay_train.txt", "Ebay_test.txt", "Ebay_info.txt"),
                        "Stanford_Online_Products/ with Ebay_train.txt and Ebay_test.txt")
    list_name = f"Ebay_{split}.txt"
    path = require_file(name, root, list_name, "Re-extract Stanford_Online_Products.zip; both Ebay_train.txt "
                        "and Ebay_test.txt sit at its top level.")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split() != SOP_HEADER:
        raise DatasetError(f"{name}: {path} must start with the header line '{' '.join(SOP_HEADER)}'. "
                           "Use the official file unchanged.")
    rows = [line.split() for line in lines[1:] if line.strip()]
    bad = next((n for n, r in enumerate(rows, start=2) if len(r) != 4), None)
    if bad is not None:
        raise DatasetError(f"{name}: line {bad} of {path} does not have 4 fields: {lines[bad - 1]!r}.")
    try:
        ids, classes, supers = (np.array([int(r[k]) for r in rows], dtype=np.int64) for k in range(3))
    except ValueError:
        raise DatasetError(f"{name}: {path} has a non-integer id field. Use the official file unchanged.") from None
    if not rows:
        raise DatasetError(f"{name}: {path} lists no images. Use the official file unchanged.")
    ds = ImageListDataset(name, split, root, [str(root / r[3]) for r in rows],
                          relabel(classes, label_convention), transform)
    ds.super_labels, ds.image_ids = supers, ids
    ds.per_item = ds.per_item + ("super_labels", "image_ids")
    check_count(name, split, len(ds), expect_counts)
    return ds.apply_skip(skip)
