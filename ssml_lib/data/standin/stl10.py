"""The stand-in STL-10: ten object classes at 96x96 px in the ``stl10_binary`` layout torchvision's ``STL10`` reads.

Real layout (``stl10_binary/``): ``train_X.bin`` (5,000 images), ``test_X.bin`` (8,000) and ``unlabeled_X.bin``
(100,000) are raw uint8 with no header, 3 x 96 x 96 = 27,648 bytes an image: the red plane, then green, then blue,
each plane **column-major** (the byte of pixel (row y, column x) of channel c is at c * 9216 + x * 96 + y, as the
files were written from MATLAB). ``train_y.bin`` and ``test_y.bin`` hold one uint8 label a byte, 1..10.
``class_names.txt`` lists the ten names one a line; ``fold_indices.txt`` has ten lines of space-separated 0-based
indices into the training images (the ten predefined 1,000-image training folds).

The ten classes are independent procedural objects in outdoor surroundings (as the CIFAR-10 stand-in's, from a
class space of their own). As in the real set, the unlabelled split holds the ten classes and other kinds of object
too (:data:`OTHER_KINDS` more), in equal numbers; its labels are not written. Each fold is a seeded fifth of the
training images. Same (size, seed) -> the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .cifar import render_split
from .classes import stable_rng
from .habitats import HabitatPool
from .sizes import Stl10Size

PX = 96  # torchvision reads every STL-10 image as 3 x 96 x 96 bytes
CLASS_NAMES = tuple(f"standin_object_{c}" for c in range(10))
OTHER_KINDS = 5  # kinds of object seen in the unlabelled split only
FOLDS = 10


def to_stl10_bytes(img: np.ndarray) -> np.ndarray:
    """(96, 96, 3) uint8 RGB -> the 27,648 bytes of one image: R, G, B planes, each column-major."""
    return np.ascontiguousarray(img.transpose(2, 1, 0)).reshape(-1)


def _split(split: str, per_class: int, seed: int, habitats: HabitatPool, kinds: int = 10):
    names = CLASS_NAMES + tuple(f"standin_other_{c}" for c in range(kinds - len(CLASS_NAMES)))
    return render_split(split, per_class, seed, PX, habitats, namespace="stl10", names=names, to_row=to_stl10_bytes)


def write_stl10(top: Path, size: Stl10Size, seed: int) -> None:
    """``stl10_binary/``: the seven files of the real set (see the module docstring)."""
    top.mkdir(parents=True, exist_ok=True)
    habitats = HabitatPool.for_dataset("stl10", seed)
    for split, per_class in (("train", size.train_per_class), ("test", size.test_per_class)):
        data, labels, _ = _split(split, per_class, seed, habitats)
        (top / f"{split}_X.bin").write_bytes(data.tobytes())
        (top / f"{split}_y.bin").write_bytes((np.asarray(labels, dtype=np.uint8) + 1).tobytes())  # 1..10
    data, _, _ = _split("unlabeled", size.unlabeled_per_kind, seed, habitats, kinds=10 + OTHER_KINDS)
    (top / "unlabeled_X.bin").write_bytes(data.tobytes())
    (top / "class_names.txt").write_text("".join(f"{n}\n" for n in CLASS_NAMES), encoding="utf-8", newline="\n")
    n_train = 10 * size.train_per_class
    folds = [np.sort(stable_rng("fold", "stl10", seed, f).permutation(n_train)[:max(1, n_train // 5)])
             for f in range(FOLDS)]
    (top / "fold_indices.txt").write_text("".join(" ".join(map(str, f)) + "\n" for f in folds), encoding="utf-8",
                                          newline="\n")
