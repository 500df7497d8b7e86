"""CIFAR/SVHN/STL-10 through torchvision, offline: (image, label, index) items and errors that name the files."""
import pickle

import numpy as np
import pytest
import torchvision.datasets.cifar as tv_cifar
from PIL import Image

from ssml_lib.data import check_images, open_torchvision_dataset
from ssml_lib.errors import ConfigError, DatasetError


def make_cifar10(root):
    """A miniature cifar-10-batches-py/ (2 images per train batch, 3 test images) in the real pickle format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, labels in [(f"data_batch_{i}", [i, 9 - i]) for i in range(1, 6)] + [("test_batch", [3, 1, 4])]:
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return root


@pytest.fixture
def no_md5(monkeypatch):
    """The miniature files cannot match torchvision's md5 sums; the wrapper, not the checksum, is under test."""
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)


def test_cifar10_items_are_image_label_index(tmp_path, no_md5):
    root = make_cifar10(tmp_path / "cifar")
    train = open_torchvision_dataset("cifar10", root, "train")
    test = open_torchvision_dataset("cifar10", root, "test", transform=lambda im: im.size)
    assert len(train) == 10 and train.labels.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    img, label, index = train[3]
    assert isinstance(img, Image.Image) and img.size == (32, 32) and (label, index) == (7, 3)
    assert test[2] == ((32, 32), 4, 2) and test.name == "cifar10" and test.split == "test"


def test_missing_files_name_the_layout_and_no_download(tmp_path):
    with pytest.raises(DatasetError, match="cifar-10-batches-py.*Downloads are not possible"):
        open_torchvision_dataset("cifar10", tmp_path, "train")
    root = make_cifar10(tmp_path / "c")
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetError, match="missing test_batch .*downloads are not possible"):
        open_torchvision_dataset("cifar10", root, "test")
    with pytest.raises(DatasetError, match="missing train_32x32.mat"):
        (tmp_path / "svhn").mkdir()
        (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"")
        open_torchvision_dataset("svhn", tmp_path / "svhn", "train")


def test_inner_folder_suggests_parent(tmp_path):
    root = make_cifar10(tmp_path / "cifar")
    with pytest.raises(DatasetError, match=f"Did you mean {root}\\?"):
        open_torchvision_dataset("cifar10", root / "cifar-10-batches-py", "train")


def test_corrupt_files_become_dataset_errors(tmp_path):
    root = make_cifar10(tmp_path / "cifar")  # md5 sums do not match the official ones
    with pytest.raises(DatasetError, match="incomplete or corrupt"):
        open_torchvision_dataset("cifar10", root, "train")


def test_bad_names_and_splits(tmp_path, no_md5):
    root = make_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'"):
        open_torchvision_dataset("cifar", root, "train")
    with pytest.raises(ConfigError, match="unknown split 'extra'"):
        open_torchvision_dataset("cifar10", root, "extra")
    with pytest.raises(ConfigError, match="in-memory"):
        check_images(open_torchvision_dataset("cifar10", root, "train"))
