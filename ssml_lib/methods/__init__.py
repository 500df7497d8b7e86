"""The method registry: ``METHODS[name]`` is the method class (a :class:`~ssml_lib.methods.base.Method`).

Classes are imported on first access so that importing the registry stays cheap and a notebook that uses one
method does not import the others' dependencies.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Iterator

from ..errors import ConfigError
from .base import Method

# name -> (module, class); one module per method, named after it
_REGISTRY: dict[str, tuple[str, str]] = {
    "pretrained": ("ssml_lib.methods.pretrained", "Pretrained"),
    "supervised": ("ssml_lib.methods.supervised", "Supervised"),
    "spreading": ("ssml_lib.methods.spreading", "Spreading"),
    "insclr": ("ssml_lib.methods.insclr", "InsCLR"),
    "stml": ("ssml_lib.methods.stml", "STML"),
    "stml_xbm": ("ssml_lib.methods.stml_xbm", "STMLXBM"),  # an extension: STML + a cross-batch memory
    "isl": ("ssml_lib.methods.isl", "ISL"),
    "mom": ("ssml_lib.methods.mom", "MOM"),
    # baselines of the Spreading paper's CIFAR-10 table (notebooks/paper_spreading_table1_cifar10.ipynb)
    "npsoftmax": ("ssml_lib.methods.npsoftmax", "NPSoftmax"),
    "nce": ("ssml_lib.methods.nce", "NCE"),
    "triplet": ("ssml_lib.methods.triplet", "Triplet"),
}


class _LazyRegistry(Mapping):
    def __getitem__(self, name: str) -> type[Method]:
        if name not in _REGISTRY:
            raise ConfigError(f"unknown method {name!r}; the methods are: {', '.join(_REGISTRY)}. "
                              "Fix the `method` parameter (papermill: -p method <name>).")
        module, cls = _REGISTRY[name]
        return getattr(importlib.import_module(module), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY


METHODS: Mapping[str, type[Method]] = _LazyRegistry()


def get_method(name: str) -> type[Method]:
    return METHODS[name]


__all__ = ["METHODS", "Method", "get_method"]
