"""GLDv2 loader (train_clean / train.csv, both image layouts) and the seeded class-subset recipe."""
import hashlib
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from ssml_lib.data import DatasetCountWarning, make_gldv2_subset, open_dataset
from ssml_lib.errors import ConfigError, DatasetError

# landmark id -> number of images; rows of train_clean.csv in this (unsorted) order
CLASSES = [(7, 3), (3, 1), (12, 2), (40, 4), (5, 2)]


def image_id(landmark, k):
    return hashlib.md5(f"{landmark}-{k}".encode()).hexdigest()[:16]


def make_gldv2(root, layout="train", classes=CLASSES, with_images=True):
    top = root / "gldv2"
    top.mkdir(parents=True)
    clean, rows = ["landmark_id,images"], ["id,url,landmark_id"]
    for lid, count in classes:
        ids = [image_id(lid, k) for k in range(count)]
        clean.append(f"{lid},{' '.join(ids)}")
        rows.extend(f"{i},http://x.invalid/{i}.jpg,{lid}" for i in ids)
        if with_images:
            for i in ids:
                path = top / ("train" if layout == "train" else "") / i[0] / i[1] / i[2] / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (lid, 0, 0)).save(path, "JPEG")
    (top / "train_clean.csv").write_text("\n".join(clean) + "\n")
    # train.csv is not grouped by landmark: reverse it so file order differs from train_clean's
    (top / "train.csv").write_text("\n".join([rows[0]] + rows[1:][::-1]) + "\n")
    return top


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)
        yield


def test_train_clean_order_labels_class_index_paths(tmp_path):
    top = make_gldv2(tmp_path)
    ds = open_dataset("gldv2", top, "train")
    assert ds.labels.tolist() == [7, 7, 7, 3, 12, 12, 40, 40, 40, 40, 5, 5]  # raw landmark ids, file order
    assert ds.class_index.tolist() == [0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 4, 4]  # InsCLR's remap, file order
    i = image_id(7, 0)
    assert ds.paths[0] == str(top / "train" / i[0] / i[1] / i[2] / f"{i}.jpg")
    assert ds.image_layout == "train" and ds.list_file == top / "train_clean.csv"
    img, label, index = ds[6]
    assert img.size == (8, 8) and (label, index) == (40, 6)
    by_index = open_dataset("gldv2", top, "train", label_convention="class_index")
    assert by_index.labels.tolist() == ds.class_index.tolist()


def test_train_csv_source_keeps_its_file_order(tmp_path):
    top = make_gldv2(tmp_path)
    ds = open_dataset("gldv2", top, "train", source="train")
    assert ds.labels.tolist() == [5, 5, 40, 40, 40, 40, 12, 12, 3, 7, 7, 7]
    assert ds.image_ids[0] == image_id(5, 1)
    assert ds.class_index.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 3, 4, 4, 4]


def test_insclr_flat_layout_is_detected(tmp_path):
    top = make_gldv2(tmp_path, layout="flat")
    ds = open_dataset("gldv2", top, "train")
    i = image_id(3, 0)
    assert ds.image_layout == "flat" and ds.paths[3] == str(top / i[0] / i[1] / i[2] / f"{i}.jpg")
    assert ds[3][1] == 3


def test_no_images_names_both_layouts(tmp_path):
    top = make_gldv2(tmp_path, with_images=False)
    with pytest.raises(DatasetError, match="official layout.*InsCLR layout"):
        open_dataset("gldv2", top, "train")


def test_min_images_filter(tmp_path):
    top = make_gldv2(tmp_path)
    ds = open_dataset("gldv2", top, "train", min_images=3)
    assert ds.labels.tolist() == [7, 7, 7, 40, 40, 40, 40]
    assert ds.class_index.tolist() == [0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(ConfigError, match="min_images"):
        open_dataset("gldv2", top, "train", min_images=0)
    with pytest.raises(DatasetError, match="min_images"):
        open_dataset("gldv2", top, "train", min_images=50)


def _many_classes(tmp_path, n_classes=50):
    classes = [(1000 + 7 * c, 1 + c % 4) for c in range(n_classes)][::-1]  # file not sorted by id
    return make_gldv2(tmp_path, classes=classes, with_images=False), classes


def test_subset_recipe_determinism_and_sidecar(tmp_path):
    top, classes = _many_classes(tmp_path)
    a = make_gldv2_subset(top, tmp_path / "a.csv", fraction=0.2, seed=3)
    b = make_gldv2_subset(top, tmp_path / "b.csv", fraction=0.2, seed=3)
    c = make_gldv2_subset(top, tmp_path / "c.csv", fraction=0.2, seed=4)
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()

    # The recipe, written out independently: sorted ids, default_rng(seed).choice(N, n, replace=False).
    population = np.array(sorted(lid for lid, _ in classes))
    n = round(0.2 * len(population))
    chosen = sorted(population[np.random.default_rng(3).choice(len(population), n, replace=False)])
    lines = a.read_text().splitlines()
    assert lines[0] == "landmark_id,images"
    assert [int(line.split(",")[0]) for line in lines[1:]] == chosen  # rows sorted by landmark id
    counts = dict(classes)
    assert all(len(line.split(",")[1].split()) == counts[int(line.split(",")[0])] for line in lines[1:])
    row = next(line for line in lines[1:] if counts[int(line.split(",")[0])] > 1)
    lid = int(row.split(",")[0])
    assert row.split(",")[1].split() == [image_id(lid, k) for k in range(counts[lid])]  # file order kept

    info = json.loads((tmp_path / "a.csv.json").read_text())
    assert info["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert (info["seed"], info["N"], info["n"], info["fraction"]) == (3, 50, 10, 0.2)
    assert info["n_images"] == sum(counts[x] for x in chosen)
    assert info["source"] == "train_clean" and info["min_images"] is None
    assert info["images_checked"] is False and info["missing_image_ids"] is None
    assert info["source_sha256"] == hashlib.sha256((top / "train_clean.csv").read_bytes()).hexdigest()

    ds = open_dataset("gldv2", top, "train", subset_file=a, image_layout="train")
    assert sorted(set(ds.labels.tolist())) == chosen and len(ds) == info["n_images"]
    assert ds.subset_info["sha256"] == info["sha256"]


def test_subset_of_the_real_population_size_draws_4879(tmp_path):
    top = make_gldv2(tmp_path, classes=[(i, 1) for i in range(81_313)], with_images=False)
    out = make_gldv2_subset(top, tmp_path / "six.csv")
    info = json.loads((tmp_path / "six.csv.json").read_text())
    assert (info["N"], info["n"], info["n_images"]) == (81_313, 4_879, 4_879)
    assert len(out.read_text().splitlines()) == 4_880


def test_subset_min_images_and_train_source(tmp_path):
    top, classes = _many_classes(tmp_path)
    out = make_gldv2_subset(top, tmp_path / "m.csv", fraction=0.5, seed=0, min_images=3)
    info = json.loads((tmp_path / "m.csv.json").read_text())
    eligible = sorted(lid for lid, n in classes if n >= 3)
    assert info["N"] == len(eligible) and info["n"] == round(0.5 * len(eligible))
    assert all(int(line.split(",")[0]) in eligible for line in out.read_text().splitlines()[1:])
    from_train = make_gldv2_subset(top, tmp_path / "t.csv", fraction=0.5, seed=0, min_images=3, source="train")
    assert sorted(from_train.read_text().splitlines()) != [] and json.loads(
        (tmp_path / "t.csv.json").read_text())["source"] == "train"
    # the same population and seed draw the same classes from either list
    assert [r.split(",")[0] for r in from_train.read_text().splitlines()] == \
        [r.split(",")[0] for r in out.read_text().splitlines()]


def test_subset_records_missing_images(tmp_path):
    top = make_gldv2(tmp_path)
    gone = image_id(40, 2)
    (top / "train" / gone[0] / gone[1] / gone[2] / f"{gone}.jpg").unlink()
    make_gldv2_subset(top, tmp_path / "all.csv", fraction=1.0)
    info = json.loads((tmp_path / "all.csv.json").read_text())
    assert info["images_checked"] is True and info["missing_image_ids"] == [gone] and info["n_missing_images"] == 1


def test_user_subset_file_accepted_and_edit_detected(tmp_path):
    top = make_gldv2(tmp_path)
    mine = tmp_path / "mine.csv"
    mine.write_text(f"landmark_id,images\n40,{image_id(40, 1)} {image_id(40, 0)}\n3,{image_id(3, 0)}\n")
    ds = open_dataset("gldv2", top, "train", subset_file=mine)
    assert ds.labels.tolist() == [40, 40, 3] and ds.class_index.tolist() == [0, 0, 1]
    assert ds.image_ids == [image_id(40, 1), image_id(40, 0), image_id(3, 0)] and ds.subset_info is None

    drawn = make_gldv2_subset(top, tmp_path / "d.csv", fraction=0.4)
    drawn.write_text(drawn.read_text() + f"5,{image_id(5, 0)}\n")
    with pytest.warns(UserWarning, match="no longer matches the sha256"):
        open_dataset("gldv2", top, "train", subset_file=drawn)


def test_subset_bad_input_writes_nothing(tmp_path):
    top = make_gldv2(tmp_path)
    out = tmp_path / "s.csv"
    for kwargs, match in [({"fraction": 0}, "fraction"), ({"fraction": 1.5}, "fraction"), ({"seed": -1}, "seed"),
                          ({"fraction": 0.01}, "rounds to 0"), ({"source": "index"}, "source")]:
        with pytest.raises(ConfigError, match=match):
            make_gldv2_subset(top, out, **kwargs)
        assert not out.exists() and not (tmp_path / "s.csv.json").exists()
    make_gldv2_subset(top, out, fraction=0.4)
    with pytest.raises(ConfigError, match="overwrite=True"):
        make_gldv2_subset(top, out, fraction=0.4)
    assert make_gldv2_subset(top, out, fraction=0.4, seed=1, overwrite=True) == out


def test_bad_list_files(tmp_path):
    top = make_gldv2(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,images\n1,abc\n")
    with pytest.raises(DatasetError, match="header 'landmark_id,images'"):
        open_dataset("gldv2", top, "train", subset_file=bad)
    with pytest.raises(DatasetError, match="make_gldv2_subset"):
        open_dataset("gldv2", top, "train", subset_file=tmp_path / "absent.csv")
    (top / "train_clean.csv").unlink()
    with pytest.raises(DatasetError, match="missing train_clean.csv"):
        open_dataset("gldv2", top, "train")
    assert len(open_dataset("gldv2", top, "train", source="train")) == 12
