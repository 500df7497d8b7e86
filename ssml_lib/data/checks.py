"""Open every image of a dataset once, before training, and count the missing, unreadable and truncated ones."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Union

from PIL import Image, ImageFile

from ..errors import ConfigError, DatasetError

_BLOCK = 4096  # paths per batch of futures, so a 1M-image list does not create 1M futures at once


def _problem(path: str) -> Optional[str]:
    """None if the image decodes in full, else a short reason."""
    try:
        with Image.open(path) as img:
            img.load()  # verify() misses truncated JPEGs; a full decode does not
        return None
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return f"unreadable: {type(exc).__name__}: {exc}"


@dataclass
class ImageCheckReport:
    """Result of :func:`check_images`. ``bad`` holds (file-order index, path, reason) per bad image."""

    name: str
    split: str
    n_checked: int
    bad: list = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        return len(self.bad)

    @property
    def fraction_bad(self) -> float:
        return self.n_bad / self.n_checked if self.n_checked else 0.0

    @property
    def skip(self) -> list[int]:
        """File-order indices to pass as ``open_dataset(..., skip=report.skip)``."""
        return [i for i, _, _ in self.bad]


def _limit(max_bad: Union[int, float], n: int) -> int:
    if isinstance(max_bad, bool) or not isinstance(max_bad, (int, float)) or max_bad < 0:
        raise ConfigError(f"max_bad must be a count (int >= 0) or a fraction (float in [0, 1)), got {max_bad!r}.")
    if isinstance(max_bad, float):
        if max_bad >= 1:
            raise ConfigError(f"max_bad as a float is a fraction and must be < 1, got {max_bad}; "
                              "pass an int for a count.")
        return int(max_bad * n)
    return max_bad


def check_images(dataset, max_bad: Union[int, float] = 0, workers: Optional[int] = None) -> ImageCheckReport:
    """Decode every image of ``dataset`` (anything with ``.paths``); raise past ``max_bad`` bad ones.

    ``max_bad`` is a count (int) or a fraction of the dataset (float < 1). Within the limit the report lists the
    bad images; reopen the dataset with ``skip=report.skip`` to leave them out. Writes nothing.
    """
    paths = getattr(dataset, "paths", None)
    if paths is None:
        raise ConfigError(f"check_images needs a dataset with .paths (image files), got {type(dataset).__name__}; "
                          "torchvision's in-memory datasets (CIFAR, SVHN, STL-10) need no check.")
    limit = _limit(max_bad, len(paths))
    source_index = getattr(dataset, "source_index", range(len(paths)))
    workers = workers or min(8, os.cpu_count() or 1)
    # A global Pillow switch; truncated files must fail here even if something else turned it on.
    previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    bad = []
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes without the GIL
            for start in range(0, len(paths), _BLOCK):
                block = paths[start:start + _BLOCK]
                for offset, reason in enumerate(pool.map(_problem, block)):
                    if reason is not None:
                        i = start + offset
                        bad.append((int(source_index[i]), str(paths[i]), reason))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    report = ImageCheckReport(getattr(dataset, "name", "?"), getattr(dataset, "split", "?"), len(paths), bad)
    if report.n_bad > limit:
        shown = "; ".join(f"{p} ({r})" for _, p, r in bad[:5])
        raise DatasetError(
            f"{report.name} {report.split}: {report.n_bad} of {report.n_checked} images are missing or unreadable "
            f"(limit {limit}): {shown}{' ...' if report.n_bad > 5 else ''}. Restore intact copies, or raise max_bad "
            "and reopen the dataset with skip=report.skip."
        )
    return report
