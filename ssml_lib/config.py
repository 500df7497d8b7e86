"""Typed, frozen configuration loaded from ``params/*.yaml`` and notebook parameters.

Papermill only *warns* about unknown parameters, and ``-p lr 1e-3`` (float) differs from ``lr: 1e-3`` in a
YAML file (the string ``'1e-3'`` under YAML 1.1), so every value is checked here before any work starts:

- unknown keys are refused, with close matches and the list of valid keys;
- ``int`` is accepted for a ``float`` field; a ``str`` is accepted for a number only if it parses cleanly and
  ``coerce_strings`` is on (the default: that is what rescues YAML's ``'1e-3'``); ``bool`` never comes from an
  ``int`` (nor an ``int`` from a ``bool``); NaN is refused for every number;
- ``Optional[...]``, ``Literal[...]`` (choices), ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]`` and nested
  config dataclasses (from nested dicts) are supported.

``None`` is a value, not "keep the default": it is only valid for an ``Optional`` field. To keep a default,
leave the key out.

Keys may be nested dicts (``{'data': {'data_root': ...}}``), dotted (``'data.data_root'``) or flat
(``'data_root'``): a flat name that is not a top-level field is routed to the one nested config that has it;
a name found in several nested configs must be written dotted. A method's own config plugs in by being a
:class:`Config` subclass loaded with the same :func:`load_config`.

The machinery lives in four modules, re-exported here (import from ``ssml_lib.config``): value coercion, the
:class:`Config` base and :func:`load_config` (``config_types``), name routing (``config_routing``), params
files (``config_files``), several configs from notebook parameters (``config_notebook``). This module holds
the run's own configs and their serialisation.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

# re-exported: every name this module had before the split, private helpers included, stays importable here
from .config_files import _resolve_params_file, read_params_file  # noqa: F401
from .config_notebook import _NOTEBOOK_NAMES, config_from_notebook, load_configs, notebook_parameters  # noqa: F401
from .config_routing import _ambiguous, _merge_into, _routes, _subtree, _unknown_key_error  # noqa: F401
from .config_types import (_NONE, Config, _build, _fail, _parse_str_number, _type_name,  # noqa: F401
                           coerce_value, load_config)
from .errors import ConfigError

__all__ = ["Config", "DataConfig", "EvalConfig", "RunConfig", "coerce_value", "config_from_notebook",
           "load_config", "load_configs", "notebook_parameters", "read_params_file", "save_config", "to_dict"]


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    dataset: Literal["cub200", "cars196", "sop", "gldv2", "roxford5k", "rparis6k"] = "cub200"
    data_root: Optional[str] = None  # None: generate and use the stand-in in the real layout
    standin_size: Literal["tiny", "default"] = "tiny"
    standin_seed: int = 0
    image_size: int = 224  # crop size (GoogLeNet 227 / ResNet 224 in the thesis)
    resize_size: int = 256
    num_workers: int = 0
    gldv2_fraction: float = 0.06  # the thesis's "6% GLDv2" class subset
    gldv2_subset_file: Optional[str] = None  # a user-supplied subset file replaces the seeded draw
    max_bad_images: int = 0  # unreadable images skipped (and counted) before refusing

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.image_size > 0 and self.resize_size >= self.image_size, "data.image_size",
                 f"image_size={self.image_size}, resize_size={self.resize_size}",
                 "use 0 < image_size <= resize_size")
        _require(0.0 < self.gldv2_fraction <= 1.0, "data.gldv2_fraction", self.gldv2_fraction,
                 "use a fraction in (0, 1], e.g. 0.06")
        _require(self.num_workers >= 0 and self.max_bad_images >= 0, "data.num_workers/max_bad_images",
                 (self.num_workers, self.max_bad_images), "use non-negative integers")


@dataclasses.dataclass(frozen=True)
class EvalConfig(Config):
    ks: tuple[int, ...] = (1, 2, 4, 8)  # Recall@K; SOP uses (1, 10, 100)
    nmi: bool = True
    nmi_average: Literal["arithmetic", "geometric"] = "arithmetic"
    kmeans_backend: Literal["auto", "sklearn", "faiss"] = "auto"
    kmeans_restarts: int = 1
    kmeans_seed: int = 0
    knn_backend: Literal["auto", "faiss", "torch"] = "auto"  # auto: faiss when installed
    batch_size: int = 128
    device: Literal["auto", "cpu", "cuda"] = "auto"
    scales: tuple[float, ...] = (1.0,)  # multi-scale descriptors for the revisited benchmarks
    normalize: bool = True  # L2-normalise embeddings before search
    # learned PCA-whitening of the descriptors (retrieval tables of the method papers): "none" or "pca", fitted
    # on the row's training set; whitening_dims keeps the leading directions (None: all usable);
    # whitening_images caps the training images it is fitted on (None: all)
    whitening: Literal["none", "pca"] = "none"
    whitening_dims: Optional[int] = None
    whitening_images: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.ks) > 0 and min(self.ks) >= 1, "eval.ks", self.ks, "give positive integers, e.g. [1, 2, 4, 8]")
        _require(len(self.scales) > 0 and min(self.scales) > 0, "eval.scales", self.scales, "give positive floats, e.g. [1.0]")
        _require(self.batch_size >= 1 and self.kmeans_restarts >= 1, "eval.batch_size/kmeans_restarts",
                 (self.batch_size, self.kmeans_restarts), "use positive integers")
        _require(all(v is None or v >= 2 for v in (self.whitening_dims, self.whitening_images)),
                 "eval.whitening_dims/whitening_images", (self.whitening_dims, self.whitening_images),
                 "use integers >= 2, or null for all")


@dataclasses.dataclass(frozen=True)
class RunConfig(Config):
    """One notebook run: which table, which method, on which data, evaluated how."""

    table: str
    method: str  # checked against ssml_lib.methods.METHODS by the methods registry, not here
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    output_dir: Optional[str] = None  # None: ssml_lib.paths.results_dir()
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = False


def _require(ok: bool, key: str, got: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value for {key}: {got!r}. Fix: {fix}.")


def to_dict(cfg: Any) -> dict:
    """Plain, JSON/YAML-safe dict (tuples become lists) for provenance and round trips."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v
    return plain(cfg)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write ``cfg`` as YAML (atomically); ``load_config(type(cfg), path)`` reads it back equal."""
    from .io import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
