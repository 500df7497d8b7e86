"""The stand-in CIFAR-10: ten object classes at 32x32 px in torchvision's ``cifar-10-batches-py`` pickle layout.

Real layout (what torchvision's ``CIFAR10`` reads): ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, each
a pickled dict with ``data`` (uint8, (N, 3072): per image the red, green and blue 32x32 planes, each row-major),
``labels`` (N ints), ``batch_label`` and ``filenames``; ``batches.meta`` holds ``label_names`` (10 names),
``num_cases_per_batch`` and ``num_vis`` (3072). The training images are shuffled and cut into five equal batches.

The ten classes are independent procedural objects (no shared family plan: CIFAR's classes are distinct kinds
of thing) of the target primitives, shown in outdoor surroundings from the shared habitat machinery, in the
metric-learning views (pose, scale, occluders), so an image's object, not its background, gives its class.
Same (size, seed) -> the same bytes (pickle protocol 2, fixed dict order).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .render import VIEWS, render_view
from .sizes import CifarSize

LABEL_NAMES = tuple(f"standin_object_{c}" for c in range(10))
PICKLE_PROTOCOL = 2  # the real files are Python 2 pickles; protocol 2 reads everywhere and is byte-stable


def to_cifar_row(img: np.ndarray) -> np.ndarray:
    """(32, 32, 3) uint8 RGB -> the 3072 values of one CIFAR row: the R plane, then G, then B, each row-major."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)).reshape(-1)


def _render(namespace: str, split: str, seed: int, label: int, k: int, px: int, habitats: HabitatPool) -> np.ndarray:
    rng = stable_rng("image", namespace, seed, label, split, k)
    img, _ = render_view(object_class(namespace, label + 1), VIEWS["dml"], rng, px, px, habitats)
    return img


def render_split(split: str, per_class: int, seed: int, px: int, habitats: HabitatPool, *,
                 namespace: str = "cifar10", names: tuple[str, ...] = LABEL_NAMES,
                 to_row: Callable[[np.ndarray], np.ndarray] = to_cifar_row):
    """(rows (N, 3 px px) uint8, labels, file names) of one split, ``per_class`` images of each class, shuffled;
    ``to_row`` lays out one (px, px, 3) image (the CIFAR row by default)."""
    classes = len(names)
    labels = np.repeat(np.arange(classes), per_class)
    counters = np.zeros(classes, dtype=int)
    order = stable_rng("order", namespace, seed, split).permutation(labels.size)
    rows, ys, files = [], [], []
    for i in order:
        label = int(labels[i])
        k = int(counters[label])
        counters[label] += 1
        rows.append(to_row(_render(namespace, split, seed, label, k, px, habitats)))
        ys.append(label)
        files.append(f"{names[label]}_{split}_{k:05d}.png")
    return np.stack(rows).astype(np.uint8), ys, files


def dump_pickle(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=PICKLE_PROTOCOL))


def write_cifar10(top: Path, size: CifarSize, seed: int) -> None:
    """``cifar-10-batches-py/``: data_batch_1..5, test_batch, batches.meta (see the module docstring)."""
    top.mkdir(parents=True, exist_ok=True)
    habitats = HabitatPool.for_dataset("cifar10", seed)
    data, labels, names = render_split("train", size.train_per_class, seed, size.image_px, habitats)
    per_batch = len(labels) // 5
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch if b < 4 else len(labels))
        dump_pickle(top / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                                                  "labels": labels[part], "data": data[part],
                                                  "filenames": names[part]})
    data, labels, names = render_split("test", size.test_per_class, seed, size.image_px, habitats)
    dump_pickle(top / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
                                     "filenames": names})
    dump_pickle(top / "batches.meta", {"num_cases_per_batch": per_batch, "label_names": list(LABEL_NAMES),
                                       "num_vis": 3 * size.image_px ** 2})
