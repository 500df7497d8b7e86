"""A reproducible "x% of GLDv2 classes" subset, written as a file (docs/protocols.md, GLDv2).

Recipe: population = the sorted landmark ids of the source list (after an optional min-images filter);
draw n = round(fraction * N) of them with ``numpy.random.default_rng(seed).choice(N, n, replace=False)``;
keep every image of each drawn class; write the train_clean format sorted by landmark id, plus a sidecar
``<out_file>.json`` with everything needed to redraw and verify it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, DatasetError
from ..io import atomic_write_bytes, atomic_write_text, sha256_file
from .gldv2 import (CLEAN_HEADER, SOURCES, check_image_ids, check_min_images, detect_layout, filter_min_images,
                    image_relpath, read_clean_csv, read_train_csv)
from .layout import check_choice, require_file, resolve_root

ALGORITHM = "numpy.random.default_rng(seed).choice(N, n, replace=False) over the ascending landmark ids"


def _check_args(fraction, seed) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ConfigError(f"gldv2 subset: fraction must be a number in (0, 1], e.g. 0.06 for 6%, got {fraction!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"gldv2 subset: seed must be a non-negative integer, got {seed!r}.")


def _missing_images(root: Path, ids: list[str]) -> tuple[Optional[str], Optional[list[str]]]:
    """(layout, ids whose file is absent), or (None, None) when root holds no image folders at all."""
    try:
        layout = detect_layout(root, ids)
    except DatasetError:
        return None, None
    return layout, [i for i in ids if not (root / image_relpath(i, layout)).is_file()]


def make_gldv2_subset(
    root, out_file, fraction: float = 0.06, seed: int = 0, source: str = "train_clean",
    min_images: Optional[int] = None, overwrite: bool = False,
) -> Path:
    """Draw a seeded class subset of GLDv2 and write it (train_clean format) with a JSON sidecar; returns the path.

    The sidecar ``<out_file>.json`` records seed, fraction, N, n, the image count, the file's sha256, the source
    list and its sha256, min_images, and the ids of images missing under root (when images are present).
    Open the result with ``open_dataset('gldv2', root, 'train', subset_file=<path>)``.
    """
    _check_args(fraction, seed)
    check_choice("source", source, tuple(SOURCES), "gldv2 subset")
    check_min_images(min_images)
    root = resolve_root("gldv2", root, tuple(SOURCES.values()), "the GLDv2 folder with train_clean.csv or train.csv")
    src = require_file("gldv2", root, SOURCES[source],
                       f"Download {SOURCES[source]} into root or choose another source.")
    out_file = Path(out_file).expanduser()
    sidecar = Path(str(out_file) + ".json")
    if not overwrite and (out_file.exists() or sidecar.exists()):
        raise ConfigError(f"gldv2 subset: {out_file} (or its sidecar) already exists. Pass overwrite=True to "
                          "replace it, or choose another out_file.")
    labels, ids = read_clean_csv(src) if source == "train_clean" else read_train_csv(src)
    check_image_ids(src, ids)
    eligible = filter_min_images(labels, min_images)
    population = np.unique(labels[eligible])
    N = len(population)
    n = int(round(fraction * N))
    if n < 1:
        raise ConfigError(f"gldv2 subset: fraction {fraction} of {N} classes rounds to 0 classes. Use a larger "
                          "fraction (or a list with more classes).")
    chosen = np.sort(population[np.random.default_rng(seed).choice(N, n, replace=False)])

    # Group the chosen classes' images by landmark id, keeping file order inside a class.
    take = np.flatnonzero(eligible & np.isin(labels, chosen))
    take = take[np.argsort(labels[take], kind="stable")]
    sub_labels = labels[take]
    sub_ids = [ids[i] for i in take]
    starts = np.flatnonzero(np.r_[True, sub_labels[1:] != sub_labels[:-1]])
    ends = np.r_[starts[1:], len(take)]
    rows = [f"{sub_labels[a]},{' '.join(sub_ids[a:b])}" for a, b in zip(starts, ends)]
    data = ("\n".join([CLEAN_HEADER, *rows]) + "\n").encode("utf-8")

    layout, missing = _missing_images(root, sub_ids)
    info = {
        "format": "train_clean (landmark_id,images; images space-separated), rows sorted by landmark_id",
        "source": source, "source_file": src.name, "source_sha256": sha256_file(src),
        "min_images": min_images, "population": "landmark ids of the source list"
        + (f" with >= {min_images} images" if min_images else "") + ", sorted ascending",
        "N": N, "fraction": fraction, "n": n, "seed": int(seed), "algorithm": ALGORITHM,
        "numpy_version": np.__version__, "n_images": len(sub_ids),
        "sha256": hashlib.sha256(data).hexdigest(),
        "images_checked": layout is not None, "image_layout": layout,
        "n_missing_images": None if missing is None else len(missing), "missing_image_ids": missing,
    }
    atomic_write_bytes(out_file, data)
    atomic_write_text(sidecar, json.dumps(info, indent=1) + "\n")
    return out_file
