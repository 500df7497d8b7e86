"""The dataset object every loader returns: image files in file order, integer labels, (image, label, index)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigError, DatasetError
from .layout import check_choice

# Sizes of the real datasets as distributed (README, Real data). Stand-in data is smaller, so a
# mismatch warns by default; expect_counts='error' turns it into a DatasetError for runs on the real data.
EXPECTED_COUNTS = {
    ("cub200", "train"): 5_864,
    ("cub200", "test"): 5_924,
    ("cars196", "train"): 8_054,
    ("cars196", "test"): 8_131,
    ("sop", "train"): 59_551,
    ("sop", "test"): 60_502,
    ("roxford5k", "db"): 4_993,
    ("roxford5k", "query"): 70,
    ("rparis6k", "db"): 6_322,
    ("rparis6k", "query"): 70,
    ("oxford5k", "db"): 5_063,
    ("oxford5k", "query"): 55,
    ("paris6k", "db"): 6_392,
    ("paris6k", "query"): 55,
    ("revisitop1m", "distractors"): 1_001_001,  # from the paper; not yet checked against the real list
    ("gldv2", "train_clean"): 1_580_470,
    ("gldv2", "train_clean_min15"): 1_223_195,
    ("gldv2", "train"): 4_132_914,
    ("gldv2_retrieval", "index"): 761_757,
    ("instre", "db"): 27_293,  # the split of Iscen et al. (2017)
    ("instre", "query"): 1_250,
}


class DatasetCountWarning(UserWarning):
    """A split has a different size from the real dataset's (expected for stand-in or partial data)."""


def check_count(name: str, key: str, found: int, mode: str) -> None:
    """Compare ``found`` with EXPECTED_COUNTS[(name, key)] according to ``mode`` ('warn', 'error', 'off')."""
    check_choice("expect_counts", mode, ("warn", "error", "off"), name)
    expected = EXPECTED_COUNTS.get((name, key))
    if mode == "off" or expected is None or found == expected:
        return
    msg = (
        f"{name} {key}: found {found:,} images, the real dataset has {expected:,}. Expected for stand-in or "
        "partial data (pass expect_counts='off' to silence); otherwise the folder or its list files are "
        "incomplete: re-extract the official archive."
    )
    if mode == "error":
        raise DatasetError(msg)
    warnings.warn(msg, DatasetCountWarning, stacklevel=3)


def load_rgb(path) -> Image.Image:
    """Open an image file as an RGB PIL image (grey and CMYK images too), with a DatasetError on failure."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(
            f"image file {path} is missing. Restore it, or run ssml_lib.data.check_images(dataset, max_bad=...) "
            "and reopen the dataset with skip=report.skip."
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(
            f"image file {path} cannot be read ({exc}). Replace it with an intact copy, or run "
            "ssml_lib.data.check_images(dataset, max_bad=...) and reopen the dataset with skip=report.skip."
        ) from None


class ImageListDataset(Dataset):
    """Images listed by a dataset's own files, kept in file order.

    Attributes: ``name``, ``split``, ``root`` (Path), ``paths`` (list of str), ``labels`` (int64 array, ids as
    in the files unless a loader's ``label_convention`` says otherwise), ``source_index`` (position of each
    item in the full file-order list; differs from ``arange`` only after ``skip``), ``skipped`` (paths removed).
    ``dataset[i]`` returns ``(image, label, i)``: the RGB PIL image passed through ``transform`` if given.
    """

    # Per-item sequences that ``skip`` must filter together; subclasses append their own.
    per_item: tuple[str, ...] = ("paths", "labels", "source_index")

    def __init__(
        self,
        name: str,
        split: str,
        root: Path,
        paths: Sequence[str],
        labels: Iterable[int],
        transform: Optional[Callable] = None,
    ):
        self.name = name
        self.split = split
        self.root = Path(root)
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(self.paths):
            raise DatasetError(f"{name} {split}: {len(self.paths)} paths but {len(self.labels)} labels.")
        self.source_index = np.arange(len(self.paths), dtype=np.int64)
        self.skipped: list[str] = []
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, i: int) -> Image.Image:
        """The untransformed RGB image of item ``i`` (subclasses crop queries here)."""
        return load_rgb(self.paths[i])

    def __getitem__(self, i: int):
        i = int(i)
        img = self.load_image(i)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i]), i

    def apply_skip(self, skip: Optional[Iterable[int]]) -> "ImageListDataset":
        """Drop items by their file-order index (as in ``check_images(...).skip``); returns self.

        Indices returned by ``__getitem__`` are then positions in the shortened dataset; ``source_index`` maps
        them back to file order.
        """
        if skip is None:
            return self
        try:
            drop = np.unique(np.asarray(list(skip), dtype=np.int64))
        except (TypeError, ValueError):
            raise ConfigError(
                f"{self.name}: skip must be a list of integer indices (e.g. check_images(...).skip), got {skip!r}."
            ) from None
        if drop.size == 0:
            return self
        n = len(self.paths)
        if drop[0] < 0 or drop[-1] >= n:
            raise ConfigError(
                f"{self.name} {self.split}: skip holds index {int(drop[0] if drop[0] < 0 else drop[-1])}, outside "
                f"0..{n - 1}. Use the indices that check_images reported for this same split."
            )
        keep = np.ones(n, dtype=bool)
        keep[drop] = False
        self.skipped = [self.paths[i] for i in drop]
        for attr in self.per_item:
            value = getattr(self, attr)
            if isinstance(value, np.ndarray):
                setattr(self, attr, value[keep])
            else:
                setattr(self, attr, [v for v, k in zip(value, keep) if k])
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, root='{self.root}')"


def check_options(name: str, expect_counts: str, label_convention: Optional[str] = None,
                  conventions: Sequence[str] = ("file", "zero_based")) -> None:
    """Validate the options every loader shares, before any file is read."""
    check_choice("expect_counts", expect_counts, ("warn", "error", "off"), name)
    if label_convention is not None:
        check_choice("label_convention", label_convention, tuple(conventions), name)


def relabel(labels: np.ndarray, convention: str) -> np.ndarray:
    """Apply a label convention: 'file' keeps ids as in the files, 'zero_based' subtracts 1 (STML's id-1)."""
    return labels - 1 if convention == "zero_based" else labels

