"""Revisited Oxford/Paris: gnd loading and validation, PIL query crop, query thumbnail scale, R1M list."""
import os
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from ssml_lib.data import (DatasetCountWarning, crop_query, open_dataset, open_distractors, query_resize_factor,
                           thumbnail)
from ssml_lib.errors import ConfigError, DatasetError, GroundTruthError, UnsafePickleError
from ssml_lib.io import safe_pickle_load

BBX = [136.5, 34.1, 648.5, 955.7]


def gnd_payload():
    return {
        "imlist": [f"all_souls_{i:06d}" for i in range(6)],
        "qimlist": ["all_souls_000013", "radcliffe_camera_000519"],
        "gnd": [{"bbx": list(BBX), "easy": [3, 4], "hard": [2, 5], "junk": [0]},
                {"bbx": [-5.0, -5.0, 10.0, 8.0], "easy": [3], "hard": [], "junk": [1]}],
    }


def make_revisited(root, name="roxford5k", payload=None, image_dir="jpg", protocol=2):
    top = root / name
    (top / image_dir).mkdir(parents=True)
    payload = gnd_payload() if payload is None else payload
    for i, stem in enumerate(payload["imlist"]):
        Image.new("RGB", (40 + i, 30), (10 * i, 0, 0)).save(top / image_dir / f"{stem}.jpg", "JPEG")
    sizes = [(700, 1000), (20, 10)]
    for stem, size in zip(payload.get("qimlist", []), sizes):
        Image.new("RGB", size, (250, 250, 250)).save(top / image_dir / f"{stem}.jpg", "JPEG", quality=100)
    (top / f"gnd_{name}.pkl").write_bytes(pickle.dumps(payload, protocol=protocol))
    return top


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)
        yield


def test_db_and_query_splits(tmp_path):
    top = make_revisited(tmp_path)
    db = open_dataset("roxford5k", top, "db")
    q = open_dataset("roxford5k", top, "query")
    assert db.paths == [str(top / "jpg" / f"all_souls_{i:06d}.jpg") for i in range(6)]
    assert db.labels.tolist() == [-1] * 6 and q.labels.tolist() == [0, 1]  # db: -1, query: its gnd index
    assert q.gnd == gnd_payload()["gnd"] and q.imlist == db.imlist and q.qimlist == gnd_payload()["qimlist"]
    assert q.protocol == "revisited" and q.bbx.shape == (2, 4)
    img, label, index = db[2]
    assert img.size == (42, 30) and (label, index) == (-1, 2)


def test_query_crop_pil_semantics(tmp_path):
    top = make_revisited(tmp_path)
    q = open_dataset("roxford5k", top, "query")
    img, label, _ = q[0]
    # round-half-even: 136.5 -> 136, 648.5 -> 648, 34.1 -> 34, 955.7 -> 956; half-open box
    assert img.size == (512, 922) and label == 0
    # a box leaving the image is padded with black, not clipped
    pad = q[1][0]
    assert pad.size == (15, 13)
    assert pad.getpixel((0, 0)) == (0, 0, 0) and min(pad.getpixel((7, 7))) > 240
    assert open_dataset("roxford5k", top, "query", crop_queries=False)[0][0].size == (700, 1000)


def test_query_crop_content_matches_box():
    full = Image.new("RGB", (700, 1000))
    full.putpixel((136, 34), (255, 0, 0))  # first pixel inside the rounded box
    full.putpixel((135, 34), (0, 255, 0))  # just outside it
    out = crop_query(full, BBX)
    pixels = np.asarray(out)
    assert out.getpixel((0, 0)) == (255, 0, 0) and not (pixels == [0, 255, 0]).all(-1).any()


def test_query_scaled_like_its_full_image(tmp_path):
    assert query_resize_factor((512, 922), (700, 1000)) == pytest.approx(0.922)
    top = make_revisited(tmp_path)
    q = open_dataset("roxford5k", top, "query", max_side=100)
    # 100 * 922 / 1000 = 92.2 -> longer side 92; the full image would be thumbnailed to 70 x 100
    assert max(q[0][0].size) == 92 and q[0][0].size[0] in (51, 52)
    db = open_dataset("roxford5k", top, "db", max_side=20)
    assert db[0][0].size == (20, 15)
    assert open_dataset("roxford5k", top, "db", max_side=1000)[0][0].size == (40, 30)  # never upscales
    assert thumbnail(Image.new("RGB", (700, 1000)), 100).size == (70, 100)
    with pytest.raises(ConfigError, match="max_side"):
        open_dataset("roxford5k", top, "db", max_side=0.5)


def test_rparis_and_old_protocol_files(tmp_path):
    top = make_revisited(tmp_path, "rparis6k")
    assert len(open_dataset("rparis6k", top, "db")) == 6
    old = gnd_payload()
    old["gnd"] = [{"bbx": g["bbx"], "ok": g["easy"] + g["hard"], "junk": g["junk"]} for g in old["gnd"]]
    q = open_dataset("oxford5k", make_revisited(tmp_path, "oxford5k", old), "query")
    assert q.protocol == "old" and q.gnd[0]["ok"] == [3, 4, 2, 5]


def test_numpy_arrays_in_gnd_are_accepted(tmp_path):
    payload = gnd_payload()
    payload["gnd"] = [{k: np.asarray(v, dtype=np.float64 if k == "bbx" else np.int64) for k, v in g.items()}
                      for g in payload["gnd"]]
    # protocol 4: ssml_lib.io's allow-list lacks _codecs.encode, which Python 3 protocol-2 array pickles need
    q = open_dataset("roxford5k", make_revisited(tmp_path, payload=payload, protocol=4), "query")
    assert q[0][0].size == (512, 922) and q.gnd[0]["easy"].tolist() == [3, 4]


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"
    payload = gnd_payload()
    payload["gnd"][0]["junk"] = _Evil(marker)
    top = make_revisited(tmp_path, payload=payload)
    with pytest.raises(UnsafePickleError, match="system"):
        open_dataset("roxford5k", top, "db")
    assert not marker.exists()
    ok = tmp_path / "np.pkl"
    ok.write_bytes(pickle.dumps({"a": np.arange(3), "b": [np.float64(1.5)]}, protocol=4))
    loaded = safe_pickle_load(ok)
    assert loaded["a"].tolist() == [0, 1, 2] and loaded["b"][0] == 1.5


@pytest.mark.parametrize("edit, match", [
    (lambda p: p.pop("qimlist"), r"lacks key\(s\) \['qimlist'\]"),
    (lambda p: p["gnd"][1].pop("hard"), r"gnd\[1\] lacks key\(s\) \['hard'\]"),
    (lambda p: p["gnd"][0]["easy"].append(6), r"gnd\[0\]\['easy'\] holds index 6, outside .*0\.\.5"),
    (lambda p: p["gnd"][1]["junk"].append(-1), r"gnd\[1\]\['junk'\] holds index -1"),
    (lambda p: p["gnd"][0]["junk"].append(3), r"gnd\[0\]: index 3 is in both 'easy' and 'junk'"),
    (lambda p: p["gnd"][0].update(bbx=[1, 2, 3]), r"gnd\[0\]\['bbx'\] must be 4 finite numbers"),
    (lambda p: p["gnd"][0].update(bbx=[10, 2, 3, 4]), r"x2 < x1"),
    (lambda p: p["gnd"][1].update(easy=[1.0]), r"gnd\[1\]\['easy'\] must be a flat list of integers"),
    (lambda p: p["gnd"].pop(), r"one entry per query \(2 in qimlist\), got 1"),
    (lambda p: p.update(imlist="abc"), r"'imlist' must be a list of image names"),
])
def test_gnd_validation_names_key_and_index(tmp_path, edit, match):
    payload = gnd_payload()
    edit(payload)
    top = make_revisited(tmp_path, payload=payload)
    with pytest.raises(GroundTruthError, match=match) as err:
        open_dataset("roxford5k", top, "query")
    assert "Re-download" in str(err.value)


def test_damaged_pickle(tmp_path):
    top = make_revisited(tmp_path)
    data = (top / "gnd_roxford5k.pkl").read_bytes()
    (top / "gnd_roxford5k.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(GroundTruthError, match="cannot be read as a pickle.*Re-download"):
        open_dataset("roxford5k", top, "db")


def test_image_folder_trap_and_skip_refused(tmp_path):
    top = make_revisited(tmp_path, image_dir="images")
    with pytest.raises(DatasetError, match="rename it to jpg/ or pass image_dir='images'"):
        open_dataset("roxford5k", top, "db")
    assert len(open_dataset("roxford5k", top, "db", image_dir="images")) == 6
    with pytest.raises(ConfigError, match="gnd indices"):
        open_dataset("roxford5k", top, "db", image_dir="images", skip=[1])


def test_distractor_list(tmp_path):
    top = tmp_path / "revisitop1m"
    lines = ["00/a1b2.jpg", "01/c3d4.jpg", "00/e5f6.jpg"]
    for rel in lines:
        (top / "jpg" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (30, 20)).save(top / "jpg" / rel, "JPEG")
    (top / "revisitop1m.txt").write_text("\n".join(lines) + "\n")
    ds = open_distractors(top, max_side=15)
    assert ds.paths == [str(top / "jpg" / r) for r in lines] and ds.labels.tolist() == [-1, -1, -1]
    assert ds[2][0].size == (15, 10) and ds.split == "distractors"
    with pytest.raises(DatasetError, match="revisitop1m.txt"):
        open_distractors(tmp_path / "revisitop1m" / "jpg" / "00")
