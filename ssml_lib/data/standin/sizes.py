"""How big each stand-in dataset is: one small table, per size and per dataset kind.

``tiny`` is for tests (each dataset generates in about a second); ``default`` is for the notebook demos, at
the scale whose design and measurements docs/standin.md gives (minutes a row on a 2-core CPU).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError


@dataclass(frozen=True)
class DmlSize:
    """A class-disjoint metric-learning set (CUB, Cars, SOP): train classes first, then test classes."""

    train_classes: int
    test_classes: int
    images_per_class: tuple[int, int]  # inclusive range; each class draws its count from it
    image_px: int  # square images; the object spans about 3/4 of the side


@dataclass(frozen=True)
class GldSize:
    """GLDv2-style landmark training set with heavy-tailed class sizes and a cleaned subset."""

    classes: int
    images_per_class: tuple[int, int]  # min and max of the heavy-tailed (Pareto) class size
    tail_index: float  # Pareto shape: smaller means a heavier tail
    noise_fraction: float  # images in train.csv that show something else and are left out of train_clean.csv
    image_px: int


@dataclass(frozen=True)
class RevisitedSize:
    """A revisited-Oxford/Paris-style query/database set with easy / hard / junk ground truth."""

    landmarks: int
    queries_per_landmark: int
    easy_per_landmark: int
    hard_per_landmark: int
    junk_per_landmark: int
    distractors: int  # database images of other, non-query landmarks
    image_wh: tuple[int, int]  # landscape size; about a quarter of the images are portrait


@dataclass(frozen=True)
class DistractorSize:
    """The R1M-style distractor set."""

    images: int
    image_wh: tuple[int, int]


@dataclass(frozen=True)
class GldRetrievalSize:
    """GLDv2 retrieval: index images of query landmarks and others; test queries, some of no index landmark."""

    landmarks: int
    index_per_landmark: tuple[int, int]  # inclusive range of index images per landmark
    queries_per_landmark: int
    index_distractors: int  # index images of no query landmark
    ignored_queries: int  # test images without retrieval ground truth (Usage Ignored)
    image_px: int


@dataclass(frozen=True)
class ImageFolderSize:
    """The stand-in "ImageNet": a third class set for supervised pre-training, in ImageFolder layout."""

    classes: int
    train_per_class: int
    val_per_class: int
    image_px: int


@dataclass(frozen=True)
class CifarSize:
    """The stand-in CIFAR-10/100 and SVHN: the same classes in training and test (the seen-category setting)."""

    train_per_class: int
    test_per_class: int
    image_px: int = 32  # CIFAR's size; the pickle rows hold 3 x 32 x 32 values


@dataclass(frozen=True)
class Stl10Size:
    """The stand-in STL-10 (96 px, torchvision's fixed size): labelled training and test images of the ten classes,
    and an unlabelled split of the ten and five other kinds of object, ``unlabeled_per_kind`` each."""

    train_per_class: int
    test_per_class: int
    unlabeled_per_kind: int


StandinSize = DmlSize | GldSize | GldRetrievalSize | RevisitedSize | DistractorSize | ImageFolderSize | CifarSize
StandinSize = StandinSize | Stl10Size

SIZES: dict[str, dict[str, StandinSize]] = {
    "tiny": {
        "cub200": DmlSize(8, 8, (6, 6), 48),
        "cars196": DmlSize(8, 8, (6, 6), 48),
        "sop": DmlSize(12, 12, (2, 6), 48),
        "gldv2": GldSize(12, (2, 24), 1.0, 0.2, 48),
        "roxford5k": RevisitedSize(3, 2, 4, 4, 2, 30, (64, 48)),
        "rparis6k": RevisitedSize(3, 2, 4, 4, 2, 30, (64, 48)),
        "revisitop1m": DistractorSize(40, (64, 48)),
        "imagenet": ImageFolderSize(10, 8, 2, 48),
        # original Oxford/Paris: easy/hard per landmark are the good/ok counts
        "oxford5k": RevisitedSize(3, 2, 3, 2, 1, 20, (64, 48)),
        "paris6k": RevisitedSize(3, 2, 3, 2, 1, 20, (64, 48)),
        "flickr100k": DistractorSize(30, (64, 48)),
        "gldv2_retrieval": GldRetrievalSize(6, (2, 6), 2, 30, 6, 48),
        "cifar10": CifarSize(12, 4),
        "cifar100": CifarSize(2, 1),
        "svhn": CifarSize(12, 4),
        "stl10": Stl10Size(6, 4, 8),  # 60 training, 40 test and 120 unlabelled images at 96 px
        # INSTRE: classes, queries / clear / hard database views per class (no junk, no distractors)
        "instre": RevisitedSize(6, 1, 3, 2, 0, 0, (64, 48)),
    },
    "default": {
        # CUB and Cars split their classes in halves (protocols §3.1-3.2), so train = test class count.
        "cub200": DmlSize(50, 50, (20, 20), 64),
        "cars196": DmlSize(50, 50, (20, 20), 64),
        # SOP keeps its shape: many products with few images each, 12 super-classes.
        "sop": DmlSize(240, 240, (2, 10), 64),
        "gldv2": GldSize(300, (2, 150), 0.9, 0.15, 64),
        "roxford5k": RevisitedSize(10, 2, 12, 12, 6, 300, (128, 96)),
        "rparis6k": RevisitedSize(10, 2, 12, 12, 6, 300, (128, 96)),
        "revisitop1m": DistractorSize(1000, (128, 96)),
        "imagenet": ImageFolderSize(100, 30, 10, 64),
        "oxford5k": RevisitedSize(11, 5, 10, 6, 4, 200, (128, 96)),
        "paris6k": RevisitedSize(11, 5, 10, 6, 4, 200, (128, 96)),
        "flickr100k": DistractorSize(600, (128, 96)),
        "gldv2_retrieval": GldRetrievalSize(40, (3, 12), 3, 300, 60, 64),
        # 500 training and 200 test images: written in about 3 s; a CPU epoch of convnet4 in about 10 s.
        "cifar10": CifarSize(50, 20),
        # 1,000 training and 400 test images over the 100 classes; SVHN as CIFAR-10
        "cifar100": CifarSize(10, 4),
        "svhn": CifarSize(50, 20),
        # 500 training, 400 test and 2,010 unlabelled images (real: 5,000 / 8,000 / 100,000); written in about a minute
        "stl10": Stl10Size(50, 40, 134),
        "instre": RevisitedSize(30, 2, 6, 6, 0, 0, (128, 96)),
    },
}

SIZE_TYPES: dict[str, type] = {
    "cub200": DmlSize, "cars196": DmlSize, "sop": DmlSize, "gldv2": GldSize, "roxford5k": RevisitedSize,
    "rparis6k": RevisitedSize, "revisitop1m": DistractorSize, "imagenet": ImageFolderSize,
    "oxford5k": RevisitedSize, "paris6k": RevisitedSize, "flickr100k": DistractorSize,
    "gldv2_retrieval": GldRetrievalSize,
    "cifar10": CifarSize, "cifar100": CifarSize, "svhn": CifarSize,
    "stl10": Stl10Size,
    "instre": RevisitedSize,
}


def resolve_size(name: str, size: str | StandinSize) -> StandinSize:
    """Look up ``size`` for dataset ``name``; a size dataclass of the right type is taken as is."""
    expected = SIZE_TYPES[name]
    if isinstance(size, str):
        if size not in SIZES:
            raise ConfigError(f"unknown stand-in size {size!r}; use one of {sorted(SIZES)} "
                              f"or pass a {expected.__name__}(...) instance")
        return SIZES[size][name]
    if not isinstance(size, expected):
        raise ConfigError(f"stand-in {name!r} needs a size name {sorted(SIZES)} or a {expected.__name__}, "
                          f"got {type(size).__name__}; pass e.g. size='tiny'")
    return size
