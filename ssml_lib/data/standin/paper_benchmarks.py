"""Stand-ins for the benchmarks of the InsCLR paper's own tables, in their distributed layouts: the original
Oxford5k / Paris6k (images and the ground-truth text files), the 100k Flickr distractors, and GLDv2 retrieval
(index.csv, test.csv, retrieval_solution_v2.1.csv, index/ and test/ images). Queries show database landmarks;
the landmarks are those of the revisited / GLDv2 stand-ins' namespaces (docs/paper_datasets.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .landmarks import GENERAL_PREFIX, LANDMARK_NAMES, _hex_ids, _image_wh, _query_bbx
from .output import save_jpeg, write_lines
from .render import VIEWS, render_view
from .sizes import DistractorSize, GldRetrievalSize, RevisitedSize

REVISITED_TWIN = {"oxford5k": "roxford5k", "paris6k": "rparis6k"}  # same landmarks, as in the real data


def _render(obj, view: str, key: tuple, w: int, h: int, habitats: HabitatPool, need_box: bool = False):
    rng = stable_rng("image", *key)
    img, box = render_view(obj, VIEWS[view], rng, w, h, habitats)
    while need_box and box is None:  # the object left the frame: draw again from the same stream
        img, box = render_view(obj, VIEWS[view], rng, w, h, habitats)
    return img, box


def _folder(name: str, image: str) -> str:
    """Oxford is flat; Paris keeps the archives' per-landmark folders (paris_eiffel_000123 -> eiffel/)."""
    return "" if name == "oxford5k" else image.split("_")[1] + "/"


def write_original(top: Path, size: RevisitedSize, seed: int, name: str) -> None:
    """``<name>/``: jpg/ images and gt/<query>_{query,good,ok,junk}.txt. Per landmark: the queries (also in
    the database and in their own good list), ``easy_per_landmark`` good, ``hard_per_landmark`` ok and
    ``junk_per_landmark`` junk views; then ``distractors`` images of other buildings or none."""
    twin = REVISITED_TWIN[name]
    rng = stable_rng("files", name, seed)
    habitats = HabitatPool.for_dataset(twin, seed, namespace=name)
    known = LANDMARK_NAMES[twin]
    per_landmark = size.queries_per_landmark + size.easy_per_landmark + size.hard_per_landmark + size.junk_per_landmark
    numbers = iter(rng.choice(10**6, size.landmarks * per_landmark + size.distractors, replace=False).tolist())
    for lm in range(size.landmarks):
        label = known[lm] if lm < len(known) else f"{GENERAL_PREFIX[twin]}_landmark{lm:02d}"
        qid_base = label[len("paris_"):] if name == "paris6k" else label
        obj = object_class(twin, lm + 1)
        lists: dict[str, list[str]] = {"good": [], "ok": [], "junk": []}
        queries = []
        for k in range(size.queries_per_landmark):
            image = f"{label}_{next(numbers):06d}"
            w, h = _image_wh(rng, size.image_wh)
            img, box = _render(obj, "query", (name, seed, image), w, h, habitats, need_box=True)
            save_jpeg(top / "jpg" / f"{_folder(name, image)}{image}.jpg", img)
            queries.append((f"{qid_base}_{k + 1}", image, _query_bbx(box, w, h, rng, force_half=k == 0)))
            lists["good"].append(image)
        for kind, view, count in (("good", "easy", size.easy_per_landmark), ("ok", "hard", size.hard_per_landmark),
                                  ("junk", "junk", size.junk_per_landmark)):
            for _ in range(count):
                image = f"{label}_{next(numbers):06d}"
                w, h = _image_wh(rng, size.image_wh)
                img, _ = _render(obj, view, (name, seed, image), w, h, habitats)
                save_jpeg(top / "jpg" / f"{_folder(name, image)}{image}.jpg", img)
                lists[kind].append(image)
        prefix = "oxc1_" if name == "oxford5k" else ""
        for qid, image, bbx in queries:
            write_lines(top / "gt" / f"{qid}_query.txt", [f"{prefix}{image} " + " ".join(f"{v:.1f}" for v in bbx)])
            for kind, listed in lists.items():
                write_lines(top / "gt" / f"{qid}_{kind}.txt", sorted(listed))
    for k in range(size.distractors):
        image = f"{GENERAL_PREFIX[twin]}_{next(numbers):06d}"
        obj = object_class(f"{twin}-general", k + 1) if rng.uniform() < 0.8 else None
        w, h = _image_wh(rng, size.image_wh)
        img, _ = _render(obj, "easy" if rng.uniform() < 0.6 else "hard", (name, seed, image), w, h, habitats)
        save_jpeg(top / "jpg" / f"{_folder(name, image)}{image}.jpg", img)


def write_flickr100k(top: Path, size: DistractorSize, seed: int) -> None:
    """``flickr100k/``: distractor images below jpg/ in sub-folders (other buildings, or surroundings only)."""
    rng = stable_rng("files", "flickr100k", seed)
    habitats = HabitatPool.for_dataset("revisitop1m", seed, namespace="flickr100k")
    for k, h in enumerate(_hex_ids(rng, size.images)):
        obj = object_class("revisitop1m-flickr", k + 1) if rng.uniform() < 0.7 else None
        w, hgt = _image_wh(rng, size.image_wh)
        img, _ = _render(obj, "easy" if rng.uniform() < 0.5 else "hard", ("flickr100k", seed, h), w, hgt, habitats)
        save_jpeg(top / "jpg" / f"oxc1_100k_{k % 4}" / f"{h}.jpg", img)


def write_gldv2_retrieval(top: Path, size: GldRetrievalSize, seed: int) -> None:
    """``gldv2_retrieval/`` (the retrieval files of a GLDv2 folder): index.csv, test.csv (id),
    retrieval_solution_v2.1.csv (id,images,Usage) and index|test/<a>/<b>/<c>/<id>.jpg. About a third of the
    landmark queries are Public, the rest Private; test images of no index landmark are Ignored."""
    rng = stable_rng("files", "gldv2_retrieval", seed)
    habitats = HabitatPool.for_dataset("gldv2", seed, namespace="gldv2_retrieval")
    lo, hi = size.index_per_landmark
    per_landmark = rng.integers(lo, hi + 1, size.landmarks)
    n_index = int(per_landmark.sum()) + size.index_distractors
    n_test = size.landmarks * size.queries_per_landmark + size.ignored_queries
    ids = _hex_ids(rng, n_index + n_test)
    index_ids, test_ids = ids[:n_index], ids[n_index:]
    order = rng.permutation(n_index)  # landmarks are not contiguous in index.csv
    owner = np.concatenate([np.repeat(np.arange(size.landmarks), per_landmark),
                            np.full(size.index_distractors, -1)])[order]
    px = size.image_px
    for image_id, lm in zip(index_ids, owner.tolist()):
        obj = object_class("gldv2-retrieval", lm + 1) if lm >= 0 else (
            object_class("gldv2-retrieval-other", int(rng.integers(10**6))) if rng.uniform() < 0.7 else None)
        img, _ = _render(obj, "landmark", ("gldv2_retrieval", seed, image_id), px, px, habitats)
        save_jpeg(top / "index" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg", img)
    rows, cursor = [], 0
    for lm in range(size.landmarks):
        relevant = " ".join(sorted(i for i, o in zip(index_ids, owner.tolist()) if o == lm))
        for _ in range(size.queries_per_landmark):
            usage = "Public" if cursor % 3 == 0 else "Private"
            rows.append((test_ids[cursor], lm, relevant, usage))
            cursor += 1
    for _ in range(size.ignored_queries):
        rows.append((test_ids[cursor], -1, "None", "Ignored"))
        cursor += 1
    for image_id, lm, _, _ in rows:
        obj = object_class("gldv2-retrieval", lm + 1) if lm >= 0 else (
            object_class("gldv2-retrieval-other", int(rng.integers(10**6))) if rng.uniform() < 0.7 else None)
        img, _ = _render(obj, "landmark", ("gldv2_retrieval", seed, image_id), px, px, habitats)
        save_jpeg(top / "test" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg", img)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    write_lines(top / "index.csv", ["id"] + index_ids)
    write_lines(top / "test.csv", ["id"] + [r[0] for r in rows])
    write_lines(top / "retrieval_solution_v2.1.csv",
                ["id,images,Usage"] + [f"{qid},{images},{usage}" for qid, _, images, usage in rows])
