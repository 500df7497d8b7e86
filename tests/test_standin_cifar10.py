"""The stand-in CIFAR-10 is written in the real cifar-10-batches-py pickle layout and read by torchvision."""
import pickle

import numpy as np
import pytest

from ssml_lib.data import open_torchvision_dataset
from ssml_lib.data.standin import make_standin, read_standin_marker
from ssml_lib.data.standin.cifar import to_cifar_row
from ssml_lib.data.standin.sizes import SIZES
from ssml_lib.errors import DatasetError

REAL_FILES = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta"}


@pytest.fixture(scope="module")
def top(tmp_path_factory):
    return make_standin("cifar10", tmp_path_factory.mktemp("cifar"), "tiny", seed=0)


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_files_and_keys_are_the_real_layout(top):
    assert top.name == "cifar-10-batches-py"
    assert {p.name for p in top.iterdir() if not p.name.startswith(".")} == REAL_FILES
    size = SIZES["tiny"]["cifar10"]
    total = 0
    for name in sorted(REAL_FILES - {"batches.meta"}):
        batch = _load(top / name)
        assert {"data", "labels", "batch_label", "filenames"} <= set(batch)
        data = batch["data"]
        assert data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
        assert len(batch["labels"]) == len(batch["filenames"]) == data.shape[0]
        assert all(isinstance(y, int) and 0 <= y < 10 for y in batch["labels"])
        total += data.shape[0] if name != "test_batch" else 0
    assert total == 10 * size.train_per_class
    assert len(_load(top / "test_batch")["labels"]) == 10 * size.test_per_class
    meta = _load(top / "batches.meta")
    assert len(meta["label_names"]) == 10 and meta["num_vis"] == 3072
    assert read_standin_marker(top)["name"] == "cifar10"


def test_rows_are_rgb_planes_row_major():
    img = np.arange(32 * 32 * 3, dtype=np.int64).reshape(32, 32, 3).astype(np.uint8)
    row = to_cifar_row(img)
    assert row[0] == img[0, 0, 0] and row[1] == img[0, 1, 0] and row[32] == img[1, 0, 0]  # red plane, row-major
    assert row[1024] == img[0, 0, 1] and row[2048 + 33] == img[1, 1, 2]  # then green, then blue


def test_torchvision_reads_it_through_our_loader(top):
    train = open_torchvision_dataset("cifar10", top.parent, "train")
    test = open_torchvision_dataset("cifar10", top.parent, "test")
    size = SIZES["tiny"]["cifar10"]
    assert len(train) == 10 * size.train_per_class and len(test) == 10 * size.test_per_class
    assert np.bincount(train.labels).tolist() == [size.train_per_class] * 10
    image, label, index = train[5]
    assert image.size == (32, 32) and image.mode == "RGB" and index == 5 and label == train.labels[5]
    batch = _load(top / "data_batch_1")  # the pixels torchvision decodes are the rows in the file
    assert np.array_equal(np.asarray(train[0][0]).transpose(2, 0, 1).reshape(-1), batch["data"][0])
    assert train.base.classes == _load(top / "batches.meta")["label_names"]


def test_md5_is_skipped_only_for_a_stand_in(top, tmp_path):
    import shutil

    copy = tmp_path / "real" / "cifar-10-batches-py"
    shutil.copytree(top, copy)
    (copy / ".standin_complete.json").unlink()  # now it claims to be real data: torchvision's checksums apply
    with pytest.raises(DatasetError, match="cannot read"):
        open_torchvision_dataset("cifar10", copy.parent, "train")


def test_same_seed_same_bytes(top, tmp_path):
    again = make_standin("cifar10", tmp_path, "tiny", seed=0)
    for name in REAL_FILES:
        assert (again / name).read_bytes() == (top / name).read_bytes(), name
    other = make_standin("cifar10", tmp_path / "s1", "tiny", seed=1)
    assert (other / "data_batch_1").read_bytes() != (top / "data_batch_1").read_bytes()
