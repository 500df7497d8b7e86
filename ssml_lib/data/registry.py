"""``open_dataset(name, root, split, transform=None, **options)``: one entry point for every on-disk dataset."""
from __future__ import annotations

import difflib
import inspect
from functools import partial
from typing import Callable, Optional

from ..errors import ConfigError
from .dml import open_cars196, open_cub200, open_sop
from .gldv2 import open_gldv2
from .gldv2_retrieval import open_gldv2_retrieval
from .instre import open_instre
from .layout import check_choice
from .oxford_paris import ORIGINAL_NAMES, open_oxford_paris
from .revisited import REVISITED_NAMES, open_revisited
from .torchvision_sets import TORCHVISION_SETS

LOADERS: dict[str, Callable] = {
    "cub200": open_cub200,
    "cars196": open_cars196,
    "sop": open_sop,
    "gldv2": open_gldv2,
    **{name: partial(open_revisited, name) for name in REVISITED_NAMES},
    # the original protocol's text files (or the packed pickle) and the +100k Flickr versions
    **{name: partial(open_oxford_paris, name) for name in ORIGINAL_NAMES},
    "gldv2_retrieval": open_gldv2_retrieval,
    "instre": open_instre,
}

SPLITS = {"cub200": ("train", "test"), "cars196": ("train", "test"), "sop": ("train", "test"), "gldv2": ("train",),
          **{name: ("db", "query") for name in REVISITED_NAMES + ORIGINAL_NAMES}, "gldv2_retrieval": ("index", "test")}
SPLITS["instre"] = ("db", "query", "train")


def dataset_options(name: str) -> list[str]:
    """The keyword options ``open_dataset`` accepts for ``name`` (besides transform)."""
    loader = LOADERS[name]
    params = inspect.signature(loader).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def open_dataset(name: str, root, split: str, transform: Optional[Callable] = None, **options):
    """Open split ``split`` of dataset ``name`` stored in its official layout under ``root``.

    Returns a torch Dataset whose items are ``(image, label, index)``, with ``.paths``, ``.labels``, ``.root``,
    ``.name``, ``.split`` (and ``.gnd``, ``.imlist``, ``.qimlist`` for the revisited sets). Options per dataset:
    see :func:`dataset_options` and the loaders in ``dml``, ``gldv2``, ``gldv2_retrieval``, ``revisited`` and
    ``oxford_paris``. Unknown names, splits
    and options raise ConfigError before anything is read.
    """
    if name in TORCHVISION_SETS:
        raise ConfigError(f"{name!r} is read through torchvision: use ssml_lib.data.open_torchvision_dataset"
                          f"({name!r}, root, split).")
    check_choice("dataset", name, tuple(LOADERS))
    check_choice("split", split, SPLITS[name], name)
    allowed = dataset_options(name)
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown option {key!r} for dataset {name!r}; it accepts {allowed}.{hint}")
    return LOADERS[name](root, split, transform, **options)
