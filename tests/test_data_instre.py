"""INSTRE with the split of Iscen et al.: the split file's conventions (1-based ``ok``, ``bbx`` as [x y w h]) read
from a hand-written gnd_instre.mat, the stand-in in that layout, and the mAP of their evaluation on
hand-computed rankings."""
from __future__ import annotations

import numpy as np
import pytest

from ssml_lib.data import make_standin, open_dataset
from ssml_lib.data.instre import read_split
from ssml_lib.data.standin.instre import write_split_file
from ssml_lib.errors import ConfigError, GroundTruthError
from ssml_lib.eval import EvalInputError, instre_map


def test_split_file_conventions(tmp_path):
    path = tmp_path / "gnd_instre.mat"
    write_split_file(path, ["S1/a/002.jpg", "S1/a/003.jpg", "S2/b/002.jpg"], ["S1/a/001.jpg", "S2/b/001.jpg"],
                     [[0, 1], [2]], [[10, 20, 30, 40], [0.5, 1.5, 2, 3]])
    from scipy.io import loadmat

    raw = loadmat(str(path))["gnd"][0]
    assert raw[0]["ok"].tolist() == [[1.0, 2.0]]  # on disk: MATLAB positions
    imlist, qimlist, gnd = read_split(path)
    assert imlist[2] == "S2/b/002.jpg" and qimlist == ["S1/a/001.jpg", "S2/b/001.jpg"]
    assert gnd[0] == {"bbx": [10.0, 20.0, 40.0, 60.0], "ok": [0, 1], "junk": []}  # x2 = x + w, y2 = y + h
    assert gnd[1]["bbx"] == [0.5, 1.5, 2.5, 4.5] and gnd[1]["ok"] == [2]
    write_split_file(path, imlist, qimlist, [[0, 1], [1]], [[10, 20, 30, 40], [0.5, 1.5, 2, 3]])
    assert read_split(path, index_base=0)[2][0]["ok"] == [1, 2]  # a 0-based file is read as written
    write_split_file(path, ["x.jpg"], ["q.jpg"], [[1]], [[0, 0, 1, 1]])  # position 2 of a 1-image list
    with pytest.raises(GroundTruthError, match="outside 1..1"):
        read_split(path)


def test_standin_layout_and_splits(tmp_path):
    root = make_standin("instre", tmp_path, "tiny")
    assert {p.name for p in root.iterdir()} >= {"INSTRE-S1", "INSTRE-S2", "INSTRE-M", "gnd_instre.mat", "train.txt"}
    db, query, train = (open_dataset("instre", root, s, expect_counts="off") for s in ("db", "query", "train"))
    assert (len(db), len(query), len(train)) == (30, 6, 30)  # 6 classes: 1 query, 3 + 2 database views each
    assert db.paths == [str(root / n) for n in db.imlist] and train.paths == db.paths
    for q, name in enumerate(query.qimlist):  # positives: the database views of the query's class folder
        assert [db.imlist[i].rsplit("/", 1)[0] for i in query.gnd[q]["ok"]] == [name.rsplit("/", 1)[0]] * 5
    x1, y1, x2, y2 = query.bbx[0]
    assert query[0][0].size == (round(x2) - round(x1), round(y2) - round(y1))  # cropped to the object
    assert sorted(set(train.labels.tolist())) == list(range(6)) and (db.labels == -1).all()
    with pytest.raises(ConfigError):
        open_dataset("instre", root, "test")


def test_instre_map_by_hand():
    # query 0: positives {1, 3}; ranking 1, 0, 3, 2 -> AP = 1/2 [(1 + 1)/2 + (1/2 + 2/3)/2] = 0.791667
    # query 1: positive {2}; ranking 0, 1, 2, 3 -> AP = (0 + 1/3)/2 = 0.166667
    scores = np.array([[0.9, 1.0, 0.1, 0.5], [0.9, 0.8, 0.7, 0.1]])
    out = instre_map(scores, [{"ok": [1, 3]}, {"ok": [2]}])
    assert out["ap"] == pytest.approx([19 / 24, 1 / 6])
    assert out["map"] == pytest.approx((19 / 24 + 1 / 6) / 2)
    with pytest.raises(EvalInputError, match="no positives"):
        instre_map(scores, [{"ok": [1]}, {"ok": []}])
