"""Dataset loaders for the real on-disk layouts, the zero-shot splits, image checks and named transforms.

    open_dataset(name, root, split, transform=None, **options)   # cub200, cars196, sop, gldv2, roxford5k, ...
    open_torchvision_dataset(name, root, split, transform=None)  # cifar10, cifar100, svhn, stl10
    open_distractors(root)                                      # R1M
    make_gldv2_subset(root, out_file, fraction=0.06, seed=0)    # seeded class subset + sidecar JSON
    check_images(dataset, max_bad=0)                            # decode every image; report or refuse
    build_transform(preset, train, size, resize, normalize)     # the references' pipelines by name
    make_standin(name, root, size='tiny', seed=0)               # synthetic data in the real layouts
"""
from __future__ import annotations

from .base import EXPECTED_COUNTS, DatasetCountWarning, ImageListDataset, load_rgb
from .checks import ImageCheckReport, check_images
from .dml import open_cars196, open_cub200, open_sop
from .gldv2 import image_relpath, open_gldv2
from .gldv2_subset import make_gldv2_subset
from .gnd import check_gnd, check_gnd_file
from .registry import LOADERS, dataset_options, open_dataset
from .revisited import (RevisitedDataset, Thumbnail, crop_query, open_distractors, open_revisited,
                        query_resize_factor, thumbnail)
from .torchvision_sets import TORCHVISION_SETS, IndexedTorchvisionDataset, open_torchvision_dataset
from .transforms import NORMALIZATIONS, PRESETS, build_transform


def make_standin(name: str, root, size: str = "tiny", seed: int = 0, **kwargs):
    """Write a small synthetic dataset in the real layout of ``name`` under ``root``; returns its top folder.

    Imported lazily so this package imports even where the stand-in generator is absent.
    """
    from .standin import make_standin as _make_standin

    return _make_standin(name, root, size=size, seed=seed, **kwargs)


__all__ = [
    "EXPECTED_COUNTS", "DatasetCountWarning", "ImageListDataset", "load_rgb", "ImageCheckReport", "check_images",
    "open_cars196", "open_cub200", "open_sop", "image_relpath", "open_gldv2", "make_gldv2_subset", "check_gnd",
    "check_gnd_file", "LOADERS", "dataset_options", "open_dataset", "RevisitedDataset", "Thumbnail", "crop_query",
    "open_distractors", "open_revisited", "query_resize_factor", "thumbnail", "TORCHVISION_SETS",
    "IndexedTorchvisionDataset", "open_torchvision_dataset", "NORMALIZATIONS", "PRESETS", "build_transform",
    "make_standin",
]
