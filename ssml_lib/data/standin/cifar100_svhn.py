"""The stand-in CIFAR-100 and SVHN, in the layouts torchvision's ``CIFAR100`` and ``SVHN`` read.

CIFAR-100 (``cifar-100-python/``): ``train`` and ``test``, each a pickled dict with ``data`` (uint8, (N, 3072), the
CIFAR row layout), ``fine_labels``, ``coarse_labels``, ``filenames`` and ``batch_label``; ``meta`` holds
``fine_label_names`` (100) and ``coarse_label_names`` (20). As in the real set each coarse class groups five fine
classes; here the five share one object plan (a family) and differ in some of its parts, so the coarse label
means something. Fine class c belongs to coarse class c // 5 (the real set's grouping is not by index).

SVHN (``train_32x32.mat``, ``test_32x32.mat``, MATLAB files): ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1), digits
1-9 as themselves and the digit 0 as label 10. Each image is a house-number crop: the labelled digit centred, in
a font size, colour and place of its own, with parts of its neighbours at the sides, on a plain or graded plate.
Same (size, seed) -> the same arrays.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .cifar import dump_pickle, render_split
from .classes import stable_rng
from .habitats import HabitatPool
from .sizes import CifarSize

FINE_NAMES = tuple(f"standin_fine_{c:02d}" for c in range(100))
COARSE_NAMES = tuple(f"standin_coarse_{c:02d}" for c in range(20))


def write_cifar100(top: Path, size: CifarSize, seed: int) -> None:
    """``cifar-100-python/``: train, test, meta (see the module docstring)."""
    top.mkdir(parents=True, exist_ok=True)
    habitats = HabitatPool.for_dataset("cifar100", seed)
    for split, per_class in (("train", size.train_per_class), ("test", size.test_per_class)):
        data, labels, names = render_split(split, per_class, seed, size.image_px, habitats, namespace="cifar100",
                                           names=FINE_NAMES)
        dump_pickle(top / split, {"filenames": names, "batch_label": f"{split}ing batch 1 of 1",
                                  "fine_labels": labels, "coarse_labels": [y // 5 for y in labels], "data": data})
    dump_pickle(top / "meta", {"fine_label_names": list(FINE_NAMES), "coarse_label_names": list(COARSE_NAMES)})


def _font(px: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=px)  # Pillow's bundled scalable font: no font file needed


def render_digit(digit: int, rng: np.random.Generator, px: int = 32) -> np.ndarray:
    """One (px, px, 3) uint8 house-number crop centred on ``digit`` (0-9)."""
    from PIL import Image, ImageDraw

    plate = rng.uniform(0, 255, 3)
    ink = np.where(plate > 128, rng.uniform(0, 90, 3), rng.uniform(165, 255, 3))  # contrasting ink
    ramp = np.linspace(-1, 1, px)[None, :, None] * rng.uniform(-40, 40, 3)  # a light gradient on the plate
    img = Image.fromarray(np.clip(plate + ramp + np.zeros((px, 1, 1)), 0, 255).astype(np.uint8))
    draw, size = ImageDraw.Draw(img), int(rng.integers(px * 5 // 8, px * 7 // 8))
    font, gap = _font(size), size * 0.62
    cx, cy = px / 2 + rng.uniform(-2, 2), px / 2 + rng.uniform(-2, 2)
    for offset, d in ((-gap, int(rng.integers(10))), (0.0, digit), (gap, int(rng.integers(10)))):
        if offset == 0.0 or rng.random() < 0.7:  # neighbours of the house number, cut by the crop
            draw.text((cx + offset, cy), str(d), fill=tuple(int(v) for v in ink), font=font, anchor="mm")
    out = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (px, px, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def write_svhn(top: Path, size: CifarSize, seed: int) -> None:
    """``train_32x32.mat`` and ``test_32x32.mat`` (see the module docstring); ``top`` is torchvision's root."""
    import scipy.io

    top.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", size.train_per_class), ("test", size.test_per_class)):
        digits = np.repeat(np.arange(10), per_class)[stable_rng("order", "svhn", seed, split).permutation(
            10 * per_class)]
        images = [render_digit(int(d), stable_rng("image", "svhn", seed, split, i), size.image_px)
                  for i, d in enumerate(digits)]
        x = np.ascontiguousarray(np.stack(images, axis=3))  # (32, 32, 3, N), as the real files
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)  # the real files' label 10 for 0
        path = top / f"{split}_32x32.mat"
        scipy.io.savemat(path, {"X": x, "y": y}, do_compression=False)
        with open(path, "r+b") as f:  # the header's text carries the writing time: fix it, for stable bytes
            f.write(MAT_HEADER_TEXT)


MAT_HEADER_TEXT = b"MATLAB 5.0 MAT-file, written by ssml_lib.data.standin (stand-in SVHN)".ljust(116, b" ")
