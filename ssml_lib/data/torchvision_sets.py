"""CIFAR-10/100, SVHN and STL-10 through torchvision, offline, returning (image, label, index) like the others."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
from torch.utils.data import Dataset

from ..errors import DatasetError
from .layout import check_choice, resolve_root
from .standin.output import read_marker

# name -> (folder under root holding the files, '' = root itself; files torchvision reads; splits)
TORCHVISION_SETS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
                ("train", "test")),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"], ("train", "test")),
    "svhn": ("", ["train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"], ("train", "test", "extra")),
    "stl10": ("stl10_binary", ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin",
                               "class_names.txt", "fold_indices.txt"],
              ("train", "test", "unlabeled", "train+unlabeled")),
}
_SPLIT_FILES = {"svhn": {"train": ["train_32x32.mat"], "test": ["test_32x32.mat"], "extra": ["extra_32x32.mat"]}}


class IndexedTorchvisionDataset(Dataset):
    """Wraps a torchvision dataset; ``dataset[i]`` is (image, label, i); ``labels`` is an int64 array (-1 = none)."""

    def __init__(self, name: str, split: str, root: Path, base: Dataset, labels):
        self.name, self.split, self.root, self.base = name, split, Path(root), base
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)

    @property
    def transform(self):
        return self.base.transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        image, label = self.base[int(i)]
        return image, int(label), int(i)

    def __repr__(self) -> str:
        return f"IndexedTorchvisionDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, root='{self.root}')"


def _standin_class(cls):
    """``cls`` without torchvision's md5 checks: for stand-in folders only (their generator's marker vouches for
    them; their bytes cannot match the real files' sums). Real data keeps every check."""
    class Standin(cls):
        def _check_integrity(self) -> bool:
            return all((Path(self.root) / self.base_folder / f).is_file() for f, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    Standin.__name__ = Standin.__qualname__ = f"Standin{cls.__name__}"
    return Standin


def _standin_svhn(cls):
    """SVHN without the md5 check of its .mat file, for stand-in folders only (as :func:`_standin_class`)."""
    class StandinSVHN(cls):
        def _check_integrity(self) -> bool:
            return (Path(self.root) / self.filename).is_file()

    return StandinSVHN


def _standin_stl10(cls):
    """STL-10 without the md5 checks of its .bin files, for stand-in folders only (as :func:`_standin_class`)."""
    class StandinSTL10(cls):
        def _check_integrity(self) -> bool:
            return all((Path(self.root) / self.base_folder / f).is_file() for f, _ in self.train_list + self.test_list)

    return StandinSTL10


def _expected_text(name: str) -> str:
    folder, files, _ = TORCHVISION_SETS[name]
    where = f"<root>/{folder}/" if folder else "<root>/"
    return f"{where}{{{', '.join(files)}}}"


def open_torchvision_dataset(
    name: str, root, split: str, transform: Optional[Callable] = None,
) -> IndexedTorchvisionDataset:
    """Open a torchvision-format set already on disk (``download=False``: nothing can be downloaded here)."""
    import torchvision.datasets as tvd

    check_choice("dataset", name, tuple(TORCHVISION_SETS))
    folder, files, splits = TORCHVISION_SETS[name]
    check_choice("split", split, splits, name)
    marker = folder or files[0]
    expected = f"the folder that holds {marker} (torchvision layout: {_expected_text(name)})"
    try:
        root = resolve_root(name, root, (marker,) if folder else tuple(files), expected)
    except DatasetError as exc:
        raise DatasetError(
            f"{exc} Downloads are not possible here; fetch the files elsewhere and copy them in.") from None
    needed = _SPLIT_FILES.get(name, {}).get(split, files)
    missing = [f for f in needed if not (root / folder / f).is_file()]
    if missing:
        raise DatasetError(f"{name}: missing {', '.join(missing)} under {root / folder}. Expected "
                           f"{_expected_text(name)}; downloads are not possible here, copy the files in.")
    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            if read_marker(root / folder) is not None:  # a stand-in written by ssml_lib.data.make_standin
                cls = _standin_class(cls)
            base = cls(str(root), train=split == "train", transform=transform, download=False)
            labels = base.targets
        else:
            cls = tvd.SVHN if name == "svhn" else tvd.STL10
            if name == "svhn" and read_marker(root) is not None:
                cls = _standin_svhn(cls)
            if name == "stl10" and read_marker(root / folder) is not None:
                cls = _standin_stl10(cls)
            base = cls(str(root), split=split, transform=transform, download=False)
            labels = base.labels
    except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
        raise DatasetError(f"{name}: torchvision cannot read {root} ({exc}). The files are incomplete or corrupt "
                           f"(checksum); copy intact ones to {_expected_text(name)}. Downloads are not possible "
                           "here.") from None
    return IndexedTorchvisionDataset(name, split, root, base, labels)
