"""Revisited Oxford5k / Paris6k (and the old protocol files), and the R1M distractors (docs/protocols.md, Revisited).

Labels: the ``db`` split has label -1 for every image (relevance lives in ``gnd``, per query); the ``query``
split has label q = the query's index into ``qimlist`` / ``gnd``.

Queries are cropped to ``gnd[q]['bbx']`` with PIL semantics (``Image.crop`` of the box as given: coordinates
rounded half-to-even, half-open box, black padding outside the image) before anything else. With
``max_side=S`` every image is thumbnailed (PIL ``thumbnail``, LANCZOS, never upscaling) to longer side <= S and
a cropped query to S * max(crop) / max(full image), so it keeps its full image's scale (cirtorch, InsCLR).
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError, GroundTruthError, UnsafePickleError
from ..io import safe_pickle_load
from .base import ImageListDataset, check_count, check_options, load_rgb
from .gnd import FIX as GND_FIX
from .gnd import check_gnd_file
from .layout import check_choice, require_dir, require_file, resolve_root

REVISITED_NAMES = ("roxford5k", "rparis6k", "oxford5k", "paris6k")


def query_resize_factor(crop_size: Sequence[float], full_size: Sequence[float]) -> float:
    """max(crop size) / max(full image size): the factor a cropped query's thumbnail size is scaled by."""
    return max(crop_size) / max(full_size)


def thumbnail(img: Image.Image, max_side: float) -> Image.Image:
    """A copy of ``img`` shrunk (never enlarged) so its longer side is <= floor(max_side), aspect kept."""
    side = max(1, math.floor(max_side))
    out = img.copy()
    out.thumbnail((side, side), Image.LANCZOS)
    return out


def crop_query(img: Image.Image, bbx: Sequence[float], max_side: Optional[float] = None) -> Image.Image:
    """Crop a query to its bbx (PIL semantics), then optionally thumbnail it with the full image's scale."""
    full = img.size
    out = img.crop(tuple(float(v) for v in bbx))
    if max_side is not None:
        out = thumbnail(out, max_side * query_resize_factor(out.size, full))
    return out


class Thumbnail:
    """Transform: PIL thumbnail to longer side <= ``max_side`` (LANCZOS). For database images."""

    def __init__(self, max_side: int):
        self.max_side = max_side

    def __call__(self, img: Image.Image) -> Image.Image:
        return thumbnail(img, self.max_side)

    def __repr__(self) -> str:
        return f"Thumbnail(max_side={self.max_side})"


class RevisitedDataset(ImageListDataset):
    """A revisited split; adds ``gnd``, ``imlist``, ``qimlist``, ``protocol`` ('revisited' or 'old'), ``bbx``."""

    def __init__(self, *args, crop_queries: bool = True, max_side: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.crop_queries = crop_queries
        self.max_side = max_side

    def load_image(self, i: int) -> Image.Image:
        img = load_rgb(self.paths[i])
        if self.split == "query" and self.crop_queries:
            return crop_query(img, self.bbx[i], self.max_side)
        return img if self.max_side is None else thumbnail(img, self.max_side)


def _check_max_side(name: str, max_side) -> None:
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1):
        raise ConfigError(f"{name}: max_side must be a positive integer (e.g. 1024) or None, got {max_side!r}.")


def _image_path(folder: Path, stem: str) -> str:
    # Names carry no extension in the gnd lists; the MATLAB loader adds '.jpg' only when there is none.
    return str(folder / (stem if stem.lower().endswith(".jpg") else stem + ".jpg"))


def _load_gnd(path: Path):
    try:
        return safe_pickle_load(path)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise GroundTruthError(f"{path} cannot be read as a pickle ({type(exc).__name__}: {exc}). {GND_FIX}") from None


def open_revisited(
    name: str, root, split: str, transform: Optional[Callable] = None, *, crop_queries: bool = True,
    max_side: Optional[int] = None, image_dir: str = "jpg", expect_counts: str = "warn",
    skip: Optional[Iterable[int]] = None,
) -> RevisitedDataset:
    """Open the ``db`` or ``query`` split of a revisited (or old-protocol) Oxford/Paris folder.

    ``root`` holds ``gnd_<name>.pkl`` (read only through the restricted unpickler) and ``jpg/``.
    """
    check_choice("dataset", name, REVISITED_NAMES)
    check_choice("split", split, ("db", "query"), name)
    if skip:
        raise ConfigError(f"{name}: skip is not supported, because gnd indices refer to positions in imlist. "
                          "Replace the unreadable image files with intact copies instead.")
    _check_max_side(name, max_side)
    check_options(name, expect_counts)
    gnd_name = f"gnd_{name}.pkl"
    root = resolve_root(name, root, (gnd_name,), f"the {name} folder with {gnd_name} and jpg/")
    gnd_path = require_file(name, root, gnd_name, "Download it from the revisitop site.")
    hint = (" The InsCLR download scripts extract into images/: rename it to jpg/ or pass image_dir='images'."
            if image_dir == "jpg" and (root / "images").is_dir() else
            " Extract the image archives and move every file into one flat folder.")
    folder = require_dir(name, root, image_dir, hint.strip())
    imlist, qimlist, gnd, protocol = check_gnd_file(_load_gnd(gnd_path), gnd_path)
    names = imlist if split == "db" else qimlist
    labels = np.full(len(names), -1, dtype=np.int64) if split == "db" else np.arange(len(names))
    ds = RevisitedDataset(name, split, root, [_image_path(folder, s) for s in names], labels, transform,
                          crop_queries=bool(crop_queries), max_side=max_side)
    ds.gnd, ds.imlist, ds.qimlist, ds.protocol = gnd, imlist, qimlist, protocol
    ds.gnd_file = gnd_path
    ds.bbx = np.array([np.asarray(g["bbx"], dtype=np.float64) for g in gnd]).reshape(-1, 4)
    check_count(name, split, len(ds), expect_counts)
    return ds


def open_distractors(
    root, transform: Optional[Callable] = None, *, list_file: str = "revisitop1m.txt", max_side: Optional[int] = None,
    expect_counts: str = "warn", skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """The R1M distractors: ``root/revisitop1m.txt`` lists paths (with extension) relative to ``root/jpg/``.

    Labels are -1. Append their descriptors after the database's before ranking (docs/protocols.md, +R1M).
    """
    name = "revisitop1m"
    _check_max_side(name, max_side)
    check_options(name, expect_counts)
    root = resolve_root(name, root, (list_file,), f"the revisitop1m folder with {list_file} and jpg/")
    path = require_file(name, root, list_file, "Download revisitop1m.txt from the revisitop site.")
    folder = require_dir(name, root, "jpg", "Extract the revisitop1m.*.tar.gz archives under jpg/.")
    rel = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ds = ImageListDataset(name, "distractors", root, [str(folder / r) for r in rel], np.full(len(rel), -1), transform)
    if max_side is not None:
        ds.transform = _compose(Thumbnail(max_side), transform)
    check_count(name, "distractors", len(ds), expect_counts)
    return ds.apply_skip(skip)


def _compose(first: Callable, then: Optional[Callable]) -> Callable:
    if then is None:
        return first
    from torchvision.transforms import Compose

    return Compose([first, then])
