"""The stand-in CIFAR-100 (cifar-100-python pickles) and SVHN (.mat files) are in the real layouts, read by
torchvision through our loader, and the CIFAR-10 stand-in's bytes did not change when its writer was shared."""
import hashlib
import pickle

import numpy as np
import pytest
import scipy.io

from ssml_lib.data import open_torchvision_dataset
from ssml_lib.data.standin import make_standin, read_standin_marker
from ssml_lib.data.standin.sizes import SIZES


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("small")
    return {name: make_standin(name, base, "tiny", seed=0) for name in ("cifar100", "svhn")}


def test_cifar100_files_keys_and_label_grouping(roots):
    top, size = roots["cifar100"], SIZES["tiny"]["cifar100"]
    assert top.name == "cifar-100-python"
    assert {p.name for p in top.iterdir() if not p.name.startswith(".")} == {"train", "test", "meta"}
    for split, per_class in (("train", size.train_per_class), ("test", size.test_per_class)):
        batch = _load(top / split)
        assert {"data", "fine_labels", "coarse_labels", "filenames", "batch_label"} <= set(batch)
        assert batch["data"].dtype == np.uint8 and batch["data"].shape == (100 * per_class, 3072)
        assert np.bincount(batch["fine_labels"]).tolist() == [per_class] * 100
        assert [c for c in batch["coarse_labels"]] == [f // 5 for f in batch["fine_labels"]]
    meta = _load(top / "meta")
    assert len(meta["fine_label_names"]) == 100 and len(meta["coarse_label_names"]) == 20
    assert read_standin_marker(top)["name"] == "cifar100"


def test_svhn_mat_files_are_the_real_layout(roots):
    top, size = roots["svhn"], SIZES["tiny"]["svhn"]
    assert {p.name for p in top.iterdir() if not p.name.startswith(".")} == {"train_32x32.mat", "test_32x32.mat"}
    for split, per_class in (("train", size.train_per_class), ("test", size.test_per_class)):
        mat = scipy.io.loadmat(top / f"{split}_32x32.mat")
        assert mat["X"].dtype == np.uint8 and mat["X"].shape == (32, 32, 3, 10 * per_class)
        assert mat["y"].shape == (10 * per_class, 1)
        assert sorted(set(mat["y"].ravel().tolist())) == list(range(1, 11))  # 10 is the digit 0, no 0 label


@pytest.mark.parametrize("name", ["cifar100", "svhn"])
def test_torchvision_reads_them_through_our_loader(roots, name):
    top, size = roots[name], SIZES["tiny"][name]
    root = top.parent if name == "cifar100" else top
    classes = 100 if name == "cifar100" else 10
    train, test = (open_torchvision_dataset(name, root, s) for s in ("train", "test"))
    assert len(train) == classes * size.train_per_class and len(test) == classes * size.test_per_class
    assert np.bincount(train.labels).tolist() == [size.train_per_class] * classes  # SVHN: 10 -> 0 by torchvision
    image, label, index = train[3]
    assert image.size == (32, 32) and image.mode == "RGB" and index == 3 and label == train.labels[3]


def test_svhn_image_holds_its_digit_in_the_centre(roots):
    mat = scipy.io.loadmat(roots["svhn"] / "train_32x32.mat")
    x = mat["X"].astype(np.float32)
    centre, edge = x[10:22, 12:20].std(axis=(0, 1, 2)), x[:, :3].std(axis=(0, 1, 2))
    assert np.median(centre) > np.median(edge)  # ink in the middle, mostly plate at the border


def test_cifar10_bytes_unchanged_by_the_shared_writer(tmp_path):
    top = make_standin("cifar10", tmp_path, "tiny", seed=0)
    digest = hashlib.sha256(b"".join((top / f).read_bytes() for f in ("data_batch_1", "test_batch"))).hexdigest()
    assert digest == CIFAR10_TINY_SHA256


CIFAR10_TINY_SHA256 = "210766e1ca9a0b216e0d8b337421a4d69383824ebb84b5ddc03ebaf6533e348c"  # written before the change
