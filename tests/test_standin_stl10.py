"""The stand-in STL-10 is in the real stl10_binary layout (raw uint8, planes column-major, labels 1..10, the ten
folds), torchvision's STL10 reads it back through our loader for every split, and a missing folder or file is named."""
import numpy as np
import pytest

from ssml_lib.data import open_torchvision_dataset
from ssml_lib.data.standin import make_standin, read_standin_marker
from ssml_lib.data.standin.sizes import SIZES
from ssml_lib.data.standin.stl10 import OTHER_KINDS, PX, to_stl10_bytes
from ssml_lib.errors import DatasetError

IMAGE_BYTES = 3 * 96 * 96  # 27,648


@pytest.fixture(scope="module")
def top(tmp_path_factory):
    return make_standin("stl10", tmp_path_factory.mktemp("stl"), "tiny", seed=0)


def test_files_sizes_labels_and_folds(top):
    size = SIZES["tiny"]["stl10"]
    n_train, n_test = 10 * size.train_per_class, 10 * size.test_per_class
    assert top.name == "stl10_binary" and read_standin_marker(top)["name"] == "stl10"
    assert {p.name for p in top.iterdir() if not p.name.startswith(".")} == {
        "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin", "class_names.txt",
        "fold_indices.txt"}
    assert (top / "train_X.bin").stat().st_size == n_train * IMAGE_BYTES
    assert (top / "test_X.bin").stat().st_size == n_test * IMAGE_BYTES
    assert (top / "unlabeled_X.bin").stat().st_size == (10 + OTHER_KINDS) * size.unlabeled_per_kind * IMAGE_BYTES
    for split, n, per_class in (("train", n_train, size.train_per_class), ("test", n_test, size.test_per_class)):
        y = np.frombuffer((top / f"{split}_y.bin").read_bytes(), dtype=np.uint8)
        assert y.size == n and y.min() == 1 and y.max() == 10  # the real files' 1..10
        assert np.bincount(y)[1:].tolist() == [per_class] * 10
    assert len((top / "class_names.txt").read_text().splitlines()) == 10
    folds = [np.array(line.split(), dtype=int) for line in (top / "fold_indices.txt").read_text().splitlines()]
    assert len(folds) == 10 and all(f.size == n_train // 5 and 0 <= f.min() and f.max() < n_train for f in folds)


def test_planes_are_column_major_by_hand():
    img = np.zeros((PX, PX, 3), dtype=np.uint8)
    img[1, 2, 0] = 7   # red at row 1, column 2: byte 0 * 9216 + 2 * 96 + 1 = 193
    img[90, 5, 2] = 9  # blue at row 90, column 5: byte 2 * 9216 + 5 * 96 + 90 = 19,002
    flat = to_stl10_bytes(img)
    assert flat.size == IMAGE_BYTES and np.flatnonzero(flat).tolist() == [193, 19002]
    assert flat[193] == 7 and flat[19002] == 9


def test_torchvision_reads_every_split_and_the_byte_positions(top):
    train = open_torchvision_dataset("stl10", top.parent, "train")
    raw = np.frombuffer((top / "train_X.bin").read_bytes(), dtype=np.uint8)
    i, (y, x) = 3, (70, 5)  # image 3, pixel at row 70, column 5
    image, label, index = train[i]
    assert image.size == (96, 96) and index == i and label == train.labels[i]
    for c in range(3):
        assert image.getpixel((x, y))[c] == raw[i * IMAGE_BYTES + c * 96 * 96 + x * 96 + y]
    assert train.labels.tolist() == (np.frombuffer((top / "train_y.bin").read_bytes(), np.uint8) - 1).tolist()
    size = SIZES["tiny"]["stl10"]
    unlabeled = open_torchvision_dataset("stl10", top.parent, "unlabeled")
    both = open_torchvision_dataset("stl10", top.parent, "train+unlabeled")
    assert len(unlabeled) == (10 + OTHER_KINDS) * size.unlabeled_per_kind and (unlabeled.labels == -1).all()
    assert len(both) == len(train) + len(unlabeled) and both.labels[:len(train)].tolist() == train.labels.tolist()
    assert len(open_torchvision_dataset("stl10", top.parent, "test")) == 10 * size.test_per_class


def test_a_missing_folder_or_file_is_named(tmp_path, top):
    with pytest.raises(DatasetError, match="stl10_binary.*Downloads are not possible"):
        open_torchvision_dataset("stl10", tmp_path, "train")
    copy = tmp_path / "copy" / "stl10_binary"
    copy.mkdir(parents=True)
    for p in top.iterdir():
        if p.name != "unlabeled_X.bin":
            (copy / p.name).write_bytes(p.read_bytes())
    with pytest.raises(DatasetError, match="missing unlabeled_X.bin"):
        open_torchvision_dataset("stl10", copy.parent, "train+unlabeled")
