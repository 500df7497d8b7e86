"""The original Oxford5k / Paris6k layout (+100k Flickr) and GLDv2 retrieval: loaders, errors and stand-ins."""
import warnings

import numpy as np
import pytest
from PIL import Image

from ssml_lib.data import DatasetCountWarning, make_standin, open_dataset
from ssml_lib.errors import ConfigError, DatasetError, GroundTruthError
from ssml_lib.eval import gldv2_retrieval_map, original_map


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)
        yield


def jpeg(path, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path, "JPEG")


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def make_oxford(tmp_path, paris=False):
    """Five images; query all_souls_1 on all_souls_000013 (its own good image); one per-landmark folder for Paris."""
    p = "paris_" if paris else ""
    top = tmp_path / ("paris6k" if paris else "oxford5k")
    names = [f"{p}all_souls_000013", f"{p}all_souls_000040", f"{p}all_souls_000091", f"{p}oxford_000001",
             f"{p}all_souls_000099"]
    for n in names:
        jpeg(top / "jpg" / ("all/" if paris else "") / f"{n}.jpg")
    prefix = "" if paris else "oxc1_"
    write(top / "gt" / "all_souls_1_query.txt", [f"{prefix}{p}all_souls_000013 5.5 2.0 25.5 22.0"])
    write(top / "gt" / "all_souls_1_good.txt", [f"{p}all_souls_000013", f"{p}all_souls_000091"])
    write(top / "gt" / "all_souls_1_ok.txt", [f"{p}all_souls_000040"])
    write(top / "gt" / "all_souls_1_junk.txt", [f"{p}all_souls_000099"])
    return top


def test_oxford_text_layout(tmp_path):
    top = make_oxford(tmp_path)
    db, q = open_dataset("oxford5k", top, "db"), open_dataset("oxford5k", top, "query")
    # the database is every image, sorted by name, the query image included
    assert db.imlist == ["all_souls_000013", "all_souls_000040", "all_souls_000091", "all_souls_000099",
                         "oxford_000001"]
    assert len(db) == 5 and (db.labels == -1).all() and db.protocol == "old"
    assert q.query_ids == ["all_souls_1"] and q.qimlist == ["all_souls_000013"]  # 'oxc1_' dropped
    assert q.gnd[0] == {"bbx": [5.5, 2.0, 25.5, 22.0], "ok": [0, 2, 1], "junk": [3]}  # ok = good then ok
    assert q[0][0].size == (20, 20) and q[0][1] == 0  # cropped to the box (PIL: x 5.5 -> 6 .. 25.5 -> 26)
    assert open_dataset("oxford5k", top, "query", crop_queries=False)[0][0].size == (40, 30)


def test_paris_per_landmark_folders(tmp_path):
    top = make_oxford(tmp_path, paris=True)
    db = open_dataset("paris6k", top, "db")
    assert db.paths[0].endswith("jpg/all/paris_all_souls_000013.jpg")
    assert open_dataset("paris6k", top, "query").gnd[0]["ok"] == [0, 2, 1]


def test_105k_appends_the_distractors(tmp_path):
    top = make_oxford(tmp_path)
    with pytest.raises(DatasetError, match="flickr100k"):
        open_dataset("oxford105k", top, "db")
    for i in range(3):
        jpeg(tmp_path / "flickr100k" / "jpg" / f"d{i % 2}" / f"{i}.jpg")
    db = open_dataset("oxford105k", top, "db")
    assert len(db) == 8 and db.n_db == 5 and db.paths[5].endswith("flickr100k/jpg/d0/0.jpg")
    assert db.distractors == ["d0/0.jpg", "d0/2.jpg", "d1/1.jpg"] and (db.labels == -1).all()
    q = open_dataset("oxford105k", top, "query")
    assert len(q) == 1 and q.gnd[0]["ok"] == [0, 2, 1]  # queries and their ground truth are unchanged


def test_oxford_errors(tmp_path):
    top = make_oxford(tmp_path)
    with pytest.raises(ConfigError, match="skip"):
        open_dataset("oxford5k", top, "db", skip=[1])
    with pytest.raises(ConfigError, match="oxford105k"):
        open_dataset("oxford5k", top, "db", distractor_root=tmp_path)
    with pytest.raises(DatasetError, match="does not look like"):
        open_dataset("oxford5k", top / "jpg", "db")
    write(top / "gt" / "all_souls_1_ok.txt", ["all_souls_000777"])
    with pytest.raises(GroundTruthError, match="all_souls_000777.*not in the image folder"):
        open_dataset("oxford5k", top, "db")
    write(top / "gt" / "all_souls_1_query.txt", ["oxc1_all_souls_000013 5.5 2.0"])
    with pytest.raises(GroundTruthError, match="x1 y1 x2 y2"):
        open_dataset("oxford5k", top, "query")
    write(top / "gt" / "all_souls_1_ok.txt", ["all_souls_000040"])
    (top / "gt" / "all_souls_1_junk.txt").unlink()
    write(top / "gt" / "all_souls_1_query.txt", ["oxc1_all_souls_000013 5.5 2.0 25.5 22.0"])
    with pytest.raises(DatasetError, match="all_souls_1_junk.txt"):
        open_dataset("oxford5k", top, "db")
    jpeg(top / "jpg" / "copy" / "oxford_000001.jpg")
    with pytest.raises(DatasetError, match="two images are named oxford_000001"):
        open_dataset("oxford5k", top, "db")


def make_gldv2(tmp_path):
    top = tmp_path / "gldv2"
    index = ["a00", "b10", "c20", "d30"]
    test = ["q01", "q02", "q03", "q04"]
    for i in index:
        jpeg(top / "index" / i[0] / i[1] / i[2] / f"{i}.jpg")
    for i in test:
        jpeg(top / "test" / i[0] / i[1] / i[2] / f"{i}.jpg")
    write(top / "index.csv", ["id"] + index)
    write(top / "test.csv", ["id"] + test)
    write(top / "retrieval_solution_v2.1.csv", ["id,images,Usage", "q03,b10 d30,Private", "q01,a00,Public",
                                                "q02,None,Ignored", "q04,c20,Private"])
    return top


def test_gldv2_retrieval_layout(tmp_path):
    top = make_gldv2(tmp_path)
    index, test = open_dataset("gldv2_retrieval", top, "index"), open_dataset("gldv2_retrieval", top, "test")
    assert index.image_ids == ["a00", "b10", "c20", "d30"] and index.paths[1].endswith("index/b/1/0/b10.jpg")
    assert test.image_ids == ["q01", "q03", "q04"]  # test.csv order, the Ignored q02 left out
    assert test.usage.tolist() == ["Public", "Private", "Private"] and test.labels.tolist() == [0, 1, 2]
    assert [p.tolist() for p in test.relevant_positions(index)] == [[0], [1, 3], [2]]
    assert open_dataset("gldv2_retrieval", top, "test", usage="private").image_ids == ["q03", "q04"]
    # an index image left out still counts in the denominator
    short = open_dataset("gldv2_retrieval", top, "index", skip=[3])
    assert [p.tolist() for p in test.relevant_positions(short)] == [[0], [1], [2]]
    assert test.n_relevant.tolist() == [1, 2, 1]


def test_gldv2_retrieval_errors(tmp_path):
    top = make_gldv2(tmp_path)
    with pytest.raises(ConfigError, match="usage"):
        open_dataset("gldv2_retrieval", top, "test", usage="Public")
    with pytest.raises(ConfigError, match="split"):
        open_dataset("gldv2_retrieval", top, "train")
    write(top / "retrieval_solution_v2.1.csv", ["id,images,Usage", "q01,zzz,Public"])
    with pytest.raises(GroundTruthError, match="zzz, which is not in index.csv"):
        open_dataset("gldv2_retrieval", top, "test")
    write(top / "retrieval_solution_v2.1.csv", ["id,images,Usage", "q99,a00,Public"])
    with pytest.raises(GroundTruthError, match="q99 is not in test.csv"):
        open_dataset("gldv2_retrieval", top, "test")
    (top / "retrieval_solution_v2.1.csv").unlink()
    with pytest.raises(DatasetError, match="missing retrieval_solution_v2.1.csv"):
        open_dataset("gldv2_retrieval", top, "test")


def test_standins_open_and_their_queries_find_their_landmarks(tmp_path, monkeypatch):
    monkeypatch.setenv("SSML_CACHE", str(tmp_path / "cache"))
    from ssml_lib.experiments.datasets import dataset_root

    root = dataset_root("oxford105k", None, standin_size="tiny")
    assert root.name == "oxford5k" and (root.parent / "flickr100k" / "jpg").is_dir()
    db, q = open_dataset("oxford105k", root, "db"), open_dataset("oxford105k", root, "query")
    assert len(db) > db.n_db and len(q) == 6 and all(q.bbx[:, 2] > q.bbx[:, 0])
    for qi, name in enumerate(q.qimlist):  # the query image is in the database and in its own good list
        assert db.imlist.index(name) in q.gnd[qi]["ok"]
    # a query's own full image ranks it first: the protocol then scores 1 for a perfect oracle
    scores = np.zeros((len(q), len(db)))
    for qi, g in enumerate(q.gnd):
        scores[qi, g["ok"]] = 1.0
    assert original_map(scores, q.gnd)["map"] == 1.0
    paris = make_standin("paris6k", tmp_path / "p")
    assert any(p.is_dir() for p in (paris / "jpg").iterdir())  # per-landmark sub-folders, as in the archives
    assert len(open_dataset("paris6k", paris, "query")) == 6
    top = dataset_root("gldv2_retrieval", None, standin_size="tiny")
    index, test = open_dataset("gldv2_retrieval", top, "index"), open_dataset("gldv2_retrieval", top, "test")
    assert set(test.usage) == {"Public", "Private"} and len(test) == 12
    relevant = test.relevant_positions(index)
    ranks = np.array([np.concatenate([r, np.setdiff1d(np.arange(len(index)), r)]) for r in relevant])
    assert gldv2_retrieval_map(ranks, relevant, usage=test.usage)["public"] == 1.0


def test_packed_pickle_with_the_distractors(tmp_path):
    import pickle

    top = tmp_path / "oxford5k"
    names = ["all_souls_000001", "all_souls_000002", "oxford_000003"]
    for n in names:
        jpeg(top / "jpg" / f"{n}.jpg")
    payload = {"imlist": names, "qimlist": ["all_souls_000001"],
               "gnd": [{"bbx": [0.0, 0.0, 10.0, 10.0], "ok": [0, 1], "junk": [2]}]}
    (top / "gnd_oxford5k.pkl").write_bytes(pickle.dumps(payload, protocol=2))
    jpeg(tmp_path / "flickr100k" / "jpg" / "x" / "d.jpg")
    db = open_dataset("oxford105k", top, "db")
    assert db.protocol == "old" and db.n_db == 3 and len(db) == 4 and db.name == "oxford105k"
    assert open_dataset("oxford5k", top, "query").gnd[0]["ok"] == [0, 1]
