"""Synthetic stand-in datasets written in the real on-disk layouts, so the real loaders are what runs.

``make_standin(name, root, size, seed)`` writes dataset ``name`` under ``root`` and returns its top folder
(the path to give ``open_dataset``). Same (name, size, seed) -> byte-identical files. The folder appears
all at once (built beside it, then renamed) and carries a marker written last; a complete folder is returned
without regenerating.
"""
from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path
from typing import Callable

from ...errors import ConfigError, DatasetError
from ...paths import standin_root
from .cifar import write_cifar10
from .cifar100_svhn import write_cifar100, write_svhn
from .dml import write_cars, write_cub, write_sop
from .imagefolder import write_imagenet
from .landmarks import write_gldv2, write_revisited, write_revisitop1m
from .paper_benchmarks import write_flickr100k, write_gldv2_retrieval, write_original
from .instre import write_instre
from .output import GENERATOR_VERSION, MARKER, build_atomically, read_marker
from .sizes import SIZES, StandinSize, resolve_size
from .stl10 import write_stl10

# name -> (top folder under root, writer(top, size, seed))
LAYOUTS: dict[str, tuple[str, Callable]] = {
    "cub200": ("CUB_200_2011", write_cub),
    "cars196": ("cars196", write_cars),
    "sop": ("Stanford_Online_Products", write_sop),
    "gldv2": ("gldv2", write_gldv2),
    "roxford5k": ("roxford5k", partial(write_revisited, name="roxford5k")),
    "rparis6k": ("rparis6k", partial(write_revisited, name="rparis6k")),
    "revisitop1m": ("revisitop1m", write_revisitop1m),
    "imagenet": ("imagenet", write_imagenet),
    "oxford5k": ("oxford5k", partial(write_original, name="oxford5k")),
    "paris6k": ("paris6k", partial(write_original, name="paris6k")),
    "flickr100k": ("flickr100k", write_flickr100k),
    "gldv2_retrieval": ("gldv2_retrieval", write_gldv2_retrieval),
    "cifar10": ("cifar-10-batches-py", write_cifar10),
    "cifar100": ("cifar-100-python", write_cifar100),
    "svhn": ("svhn", write_svhn),  # torchvision reads the .mat files from this folder itself
    "stl10": ("stl10_binary", write_stl10),
    "instre": ("instre", write_instre),
}
STANDIN_NAMES = tuple(LAYOUTS)

__all__ = ["make_standin", "read_standin_marker", "default_standin_root", "STANDIN_NAMES", "SIZES", "MARKER"]


def _check(name: object, root: object, seed: object) -> None:
    if not isinstance(name, str) or name not in LAYOUTS:
        raise ConfigError(f"unknown stand-in dataset {name!r}; use one of {list(STANDIN_NAMES)}")
    if not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"root must be a path (str or os.PathLike), got {type(root).__name__}; "
                          "pass e.g. ssml_lib.data.standin.default_standin_root()")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}; pass e.g. seed=0")
    if Path(root).exists() and not Path(root).is_dir():
        raise DatasetError(f"root {root} is a file, not a folder; pass a folder to write the stand-in under")


def make_standin(name: str, root: str | os.PathLike, size: str | StandinSize = "tiny", seed: int = 0) -> Path:
    """Write the stand-in ``name`` in its real layout under ``root``; return the dataset's top folder.

    ``name``: cub200, cars196, sop, gldv2, roxford5k, rparis6k, revisitop1m, imagenet, oxford5k, paris6k,
    flickr100k, gldv2_retrieval, cifar10, cifar100, svhn, stl10. ``size``: a key of
    ``SIZES`` ('tiny', 'default') or a size dataclass of that dataset's kind.
    """
    _check(name, root, seed)
    resolved = resolve_size(name, size)
    folder, writer = LAYOUTS[name]
    params = {"name": name, "size": dataclasses.asdict(resolved), "size_type": type(resolved).__name__,
              "seed": seed, "generator_version": GENERATOR_VERSION}
    return build_atomically(Path(root) / folder, params, lambda tmp: writer(tmp, resolved, seed))


def read_standin_marker(top: str | os.PathLike) -> dict | None:
    """The generation record of a stand-in folder (name, size, seed, content hash), or None for real data."""
    return read_marker(top)


def default_standin_root(size: str = "tiny", seed: int = 0) -> Path:
    """A per-(size, seed) root under the cache, so different sizes never replace each other."""
    return standin_root() / f"{size}-seed{seed}"
