"""The stand-in "ImageNet": a third class set, disjoint from every other stand-in, in torchvision's
ImageFolder layout (train/<wnid>/<file>.JPEG, val/<wnid>/<file>.JPEG), for a short supervised pre-training."""
from __future__ import annotations

from pathlib import Path

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .output import save_jpeg, write_lines
from .render import VIEWS, render_view
from .sizes import ImageFolderSize


def wnid(class_number: int) -> str:
    """A WordNet-id-shaped folder name; the 9 prefix keeps it apart from real ids (which start n0/n1)."""
    return f"n9{class_number:07d}"


def write_imagenet(top: Path, size: ImageFolderSize, seed: int) -> None:
    rng = stable_rng("files", "imagenet", seed)
    total_val = size.classes * size.val_per_class
    val_numbers = iter((rng.permutation(total_val) + 1).tolist())  # ILSVRC val files are numbered globally
    mapping = []
    habitats = HabitatPool.for_dataset("imagenet", seed)
    for c in range(1, size.classes + 1):
        obj, folder = object_class("imagenet", c), wnid(c)
        mapping.append(f"{folder} standin object {c}")
        train_numbers = sorted(rng.choice(90000, size.train_per_class, replace=False) + 10000)
        for k, number in enumerate(train_numbers):
            img, _ = render_view(obj, VIEWS["dml"], stable_rng("image", "imagenet", seed, c, "train", k),
                                 size.image_px, size.image_px, habitats)
            save_jpeg(top / "train" / folder / f"{folder}_{number}.JPEG", img)
        for k in range(size.val_per_class):
            img, _ = render_view(obj, VIEWS["dml"], stable_rng("image", "imagenet", seed, c, "val", k),
                                 size.image_px, size.image_px, habitats)
            save_jpeg(top / "val" / folder / f"ILSVRC2012_val_{next(val_numbers):08d}.JPEG", img)
    write_lines(top / "LOC_synset_mapping.txt", mapping)
