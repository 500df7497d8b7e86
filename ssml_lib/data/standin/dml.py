"""Class-disjoint metric-learning stand-ins in the real layouts of CUB-200-2011, Cars196 and SOP
(README.md, "Real data"): train classes take the first ids, test classes the rest."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .output import save_jpeg, save_mat, write_lines
from .render import VIEWS, render_view
from .sizes import DmlSize

SOP_SUPER_CLASSES = ("bicycle", "cabinet", "chair", "coffee_maker", "fan", "kettle", "lamp", "mug", "sofa",
                     "stapler", "table", "toaster")


def _class_counts(name: str, size: DmlSize, seed: int) -> list[int]:
    """Images per class for class ids 1..train+test."""
    lo, hi = size.images_per_class
    rng = stable_rng("counts", name, seed)
    return [int(n) for n in rng.integers(lo, hi + 1, size.train_classes + size.test_classes)]


def _render(name: str, seed: int, class_id: int, k: int, size: DmlSize, habitats: HabitatPool, family=None):
    rng = stable_rng("image", name, seed, class_id, k)
    return render_view(object_class(name, class_id, family), VIEWS["dml"], rng, size.image_px, size.image_px,
                       habitats)


def _full_box(box, px: int) -> tuple[float, float, float, float]:
    return box if box is not None else (0.0, 0.0, float(px), float(px))


def write_cub(top: Path, size: DmlSize, seed: int) -> None:
    """``CUB_200_2011/``: images.txt, image_class_labels.txt, classes.txt, train_test_split.txt,
    bounding_boxes.txt and images/<NNN.Name>/<file>.jpg."""
    counts = _class_counts("cub200", size, seed)
    rng = stable_rng("files", "cub200", seed)
    habitats = HabitatPool.for_dataset("cub200", seed)
    classes, images, labels, split, boxes = [], [], [], [], []
    for class_id, count in enumerate(counts, start=1):
        species = f"Standin_Species_{class_id:03d}"
        folder = f"{class_id:03d}.{species}"
        classes.append(f"{class_id} {folder}")
        numbers = sorted(rng.choice(9000, count, replace=False) + 1000)
        for k, number in enumerate(numbers):
            img, box = _render("cub200", seed, class_id, k, size, habitats)
            rel = f"{folder}/{species}_{number:04d}_{k}.jpg"
            save_jpeg(top / "images" / rel, img)
            image_id = len(images) + 1
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {int(rng.uniform() < 0.5)}")  # classification split: unused by DML
            x1, y1, x2, y2 = _full_box(box, size.image_px)
            boxes.append(f"{image_id} {x1:.1f} {y1:.1f} {x2 - x1:.1f} {y2 - y1:.1f}")
    for fname, lines in [("classes.txt", classes), ("images.txt", images), ("image_class_labels.txt", labels),
                         ("train_test_split.txt", split), ("bounding_boxes.txt", boxes)]:
        write_lines(top / fname, lines)


def write_cars(top: Path, size: DmlSize, seed: int) -> None:
    """``cars196/``: cars_annos.mat (struct array ``annotations`` + ``class_names``) and car_ims/NNNNNN.jpg.

    Images are numbered in a shuffled class order, as in the real file, and a few are grayscale.
    """
    counts = _class_counts("cars196", size, seed)
    rng = stable_rng("files", "cars196", seed)
    habitats = HabitatPool.for_dataset("cars196", seed)
    items = [(class_id, k) for class_id, count in enumerate(counts, start=1) for k in range(count)]
    order = rng.permutation(len(items))
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    annotations = np.empty((1, len(items)), dtype=[(f, "O") for f in fields])
    class_type = np.uint8 if len(counts) < 256 else np.uint16
    for number, idx in enumerate(order, start=1):
        class_id, k = items[idx]
        img, box = _render("cars196", seed, class_id, k, size, habitats)
        rel = f"car_ims/{number:06d}.jpg"
        grayscale = bool(rng.uniform() < 0.03) or number == 1  # at least one, so loaders must convert
        save_jpeg(top / rel, img, grayscale=grayscale)
        x1, y1, x2, y2 = _full_box(box, size.image_px)
        annotations[0, number - 1] = (
            np.array(rel), *(np.array([[v]], dtype=np.uint16) for v in (int(x1), int(y1), int(x2) - 1, int(y2) - 1)),
            np.array([[class_id]], dtype=class_type), np.array([[int(rng.uniform() < 0.5)]], dtype=np.uint8))
    class_names = np.empty((1, len(counts)), dtype=object)
    for class_id in range(1, len(counts) + 1):
        class_names[0, class_id - 1] = f"Standin Make{class_id:03d} Model {2000 + class_id % 13}"
    save_mat(top / "cars_annos.mat", {"annotations": annotations, "class_names": class_names})


def write_sop(top: Path, size: DmlSize, seed: int) -> None:
    """``Stanford_Online_Products/``: Ebay_train.txt, Ebay_test.txt, Ebay_info.txt and
    <category>_final/<product>_<n>.JPG; 12 super-classes whose classes share a geometry."""
    counts = _class_counts("sop", size, seed)
    rng = stable_rng("files", "sop", seed)
    habitats = HabitatPool.for_dataset("sop", seed)
    header = "image_id class_id super_class_id path"
    rows: dict[str, list[tuple[int, int, str]]] = {"train": [], "test": []}
    splits = [("train", range(1, size.train_classes + 1)),
              ("test", range(size.train_classes + 1, size.train_classes + size.test_classes + 1))]
    for split, class_ids in splits:
        # Classes are grouped by super-class within each split, as in the real files.
        for super_id, block in enumerate(np.array_split(np.asarray(class_ids), len(SOP_SUPER_CLASSES)), start=1):
            category = SOP_SUPER_CLASSES[super_id - 1]
            products = sorted(rng.choice(9 * 10**11, len(block), replace=False) + 10**11)
            for class_id, product in zip(block.tolist(), products):
                for k in range(counts[class_id - 1]):
                    img, _ = _render("sop", seed, class_id, k, size, habitats, family=("sop-super", super_id))
                    rel = f"{category}_final/{product}_{k}.JPG"
                    save_jpeg(top / rel, img)
                    rows[split].append((class_id, super_id, rel))
    for split in ("train", "test"):
        write_lines(top / f"Ebay_{split}.txt",
                    [header] + [f"{i} {c} {s} {p}" for i, (c, s, p) in enumerate(rows[split], start=1)])
    write_lines(top / "Ebay_info.txt",
                [header] + [f"{i} {c} {s} {p}" for i, (c, s, p) in enumerate(rows["train"] + rows["test"], start=1)])
