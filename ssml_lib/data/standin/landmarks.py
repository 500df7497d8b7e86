"""Landmark stand-ins in the real layouts of GLDv2 (train.csv, train_clean.csv, train/a/b/c/<id>.jpg), revisited
Oxford/Paris with their gnd pickle (imlist, qimlist, gnd with bbx/easy/hard/junk) and the R1M distractor list
(README.md, "Real data"; docs/protocols.md)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .output import save_jpeg, write_lines
from .render import VIEWS, render_view
from .sizes import DistractorSize, GldSize, RevisitedSize

LANDMARK_NAMES = {
    "roxford5k": ("all_souls", "ashmolean", "balliol", "bodleian", "christ_church", "cornmarket", "hertford",
                  "keble", "magdalen", "pitt_rivers", "radcliffe_camera"),
    "rparis6k": ("paris_defense", "paris_eiffel", "paris_invalides", "paris_louvre", "paris_moulinrouge",
                 "paris_museedorsay", "paris_notredame", "paris_pantheon", "paris_pompidou", "paris_sacrecoeur",
                 "paris_triomphe"),
}
GENERAL_PREFIX = {"roxford5k": "oxford", "rparis6k": "paris_general"}


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 16-hex-character ids."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        h = rng.bytes(8).hex()
        if h not in seen:
            seen.add(h)
            ids.append(h)
    return ids


def gldv2_class_sizes(size: GldSize, seed: int) -> np.ndarray:
    """Heavy-tailed (Pareto) class sizes, with at least one class below and one at or above 15 images."""
    rng = stable_rng("counts", "gldv2", seed)
    lo, hi = size.images_per_class
    n = np.clip(np.floor(lo * (1 + rng.pareto(size.tail_index, size.classes))), lo, hi).astype(int)
    if hi >= 15 and size.classes >= 2:
        if not (n < 15).any():
            n[-1] = lo
        if not (n >= 15).any():
            n[0] = min(hi, 15 + int(rng.integers(0, 10)))
    return n


def write_gldv2(top: Path, size: GldSize, seed: int) -> None:
    """``gldv2/``: train.csv (id,url,landmark_id), train_clean.csv (landmark_id,images) and
    train/<a>/<b>/<c>/<id>.jpg. Noise images (another object, or clutter only) are in train.csv only."""
    rng = stable_rng("files", "gldv2", seed)
    landmark_ids = np.sort(rng.choice(40 * size.classes, size.classes, replace=False))
    counts = gldv2_class_sizes(size, seed)
    ids = _hex_ids(rng, int(counts.sum()))
    habitats = HabitatPool.for_dataset("gldv2", seed)
    rows, clean = [], []
    cursor = 0
    for landmark, count in zip(landmark_ids.tolist(), counts.tolist()):
        kept = []
        for image_id in ids[cursor:cursor + count]:
            noisy = rng.uniform() < size.noise_fraction
            obj = object_class("gldv2-noise", int(rng.integers(10**6))) if noisy and rng.uniform() < 0.7 else None
            img, _ = render_view(object_class("gldv2", landmark) if not noisy else obj, VIEWS["landmark"],
                                 stable_rng("image", "gldv2", seed, image_id), size.image_px, size.image_px, habitats)
            save_jpeg(top / "train" / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg", img)
            rows.append(f"{image_id},http://standin.invalid/gldv2/{image_id}.jpg,{landmark}")
            if not noisy:
                kept.append(image_id)
        cursor += count
        if kept:
            clean.append(f"{landmark},{' '.join(kept)}")
    order = rng.permutation(len(rows))  # the real train.csv is not grouped by landmark
    write_lines(top / "train.csv", ["id,url,landmark_id"] + [rows[i] for i in order])
    write_lines(top / "train_clean.csv", ["landmark_id,images"] + clean)


def _image_wh(rng: np.random.Generator, wh: tuple[int, int]) -> tuple[int, int]:
    return (wh[1], wh[0]) if rng.uniform() < 0.25 else wh  # a quarter of the photos are portrait


def _query_bbx(box, width: int, height: int, rng: np.random.Generator, force_half: bool) -> list[float]:
    """Object box widened by up to 2 px, at one-decimal (fractional) precision, inside the image."""
    x1, y1, x2, y2 = box
    m = rng.uniform(0, 2, 4)
    bbx = [max(0.0, x1 - m[0]), max(0.0, y1 - m[1]), min(float(width), x2 + m[2]), min(float(height), y2 + m[3])]
    bbx = [round(float(v), 1) for v in bbx]
    if force_half:  # exercise round-half-to-even in PIL crops
        bbx[0] = float(np.floor(bbx[0])) + 0.5 if bbx[0] >= 0.5 else 0.5
    return bbx


def _per_landmark_counts(size: RevisitedSize) -> list[dict[str, int]]:
    counts = [{"easy": size.easy_per_landmark, "hard": size.hard_per_landmark, "junk": size.junk_per_landmark}
              for _ in range(size.landmarks)]
    # Real gnd files have queries without Easy (and the protocol must skip them in that setup); make
    # landmark 0 all-hard and landmark 1 all-easy so both cases exist.
    counts[0] = {"easy": 0, "hard": counts[0]["easy"] + counts[0]["hard"], "junk": counts[0]["junk"]}
    if size.landmarks > 1:
        counts[1] = {"easy": counts[1]["easy"] + counts[1]["hard"], "hard": 0, "junk": counts[1]["junk"]}
    return counts


def write_revisited(top: Path, size: RevisitedSize, seed: int, name: str) -> None:
    """``<name>/``: gnd_<name>.pkl (imlist, qimlist, gnd with bbx/easy/hard/junk) and jpg/<name>.jpg."""
    rng = stable_rng("files", name, seed)
    known = LANDMARK_NAMES[name]
    labels = [known[i] if i < len(known) else f"{GENERAL_PREFIX[name]}_landmark{i:02d}"
              for i in range(size.landmarks)]
    queries, qimlist, bbxs, db = [], [], [], []
    habitats = HabitatPool.for_dataset(name, seed)
    for lm, counts in enumerate(_per_landmark_counts(size)):
        obj = object_class(name, lm + 1)
        n = size.queries_per_landmark + sum(counts.values())
        numbers = iter(sorted(rng.choice(10**6, n, replace=False).tolist()))
        for _ in range(size.queries_per_landmark):
            qname = f"{labels[lm]}_{next(numbers):06d}"
            w, h = _image_wh(rng, size.image_wh)
            img_rng = stable_rng("image", name, seed, qname)
            img, box = render_view(obj, VIEWS["query"], img_rng, w, h, habitats)
            while box is None:  # the object left the frame: draw again from the same stream
                img, box = render_view(obj, VIEWS["query"], img_rng, w, h, habitats)
            save_jpeg(top / "jpg" / f"{qname}.jpg", img)
            qimlist.append(qname)
            queries.append(lm)
            bbxs.append(_query_bbx(box, w, h, rng, force_half=len(qimlist) == 1))
        for difficulty in ("easy", "hard", "junk"):
            for _ in range(counts[difficulty]):
                db.append((f"{labels[lm]}_{next(numbers):06d}", obj, difficulty, lm))
    general = rng.choice(10**6, size.distractors, replace=False).tolist()
    for k, number in enumerate(sorted(general)):
        obj = object_class(f"{name}-general", k + 1) if rng.uniform() < 0.8 else None
        db.append((f"{GENERAL_PREFIX[name]}_{number:06d}", obj, "easy" if rng.uniform() < 0.6 else "hard", -1))
    db = [db[i] for i in rng.permutation(len(db))]  # so positives are not contiguous in index space
    for dname, obj, difficulty, _ in db:
        w, h = _image_wh(rng, size.image_wh)
        img, _ = render_view(obj, VIEWS[difficulty], stable_rng("image", name, seed, dname), w, h, habitats)
        save_jpeg(top / "jpg" / f"{dname}.jpg", img)
    gnd = []
    for lm, bbx in zip(queries, bbxs):
        entry = {"bbx": bbx}
        for difficulty in ("easy", "hard", "junk"):
            entry[difficulty] = [i for i, (_, _, d, owner) in enumerate(db) if owner == lm and d == difficulty]
        gnd.append(entry)
    payload = {"imlist": [d[0] for d in db], "qimlist": qimlist, "gnd": gnd}
    (top / f"gnd_{name}.pkl").write_bytes(pickle.dumps(payload, protocol=2))


def write_revisitop1m(top: Path, size: DistractorSize, seed: int) -> None:
    """``revisitop1m/``: revisitop1m.txt (relative paths with extension) and jpg/<path>."""
    rng = stable_rng("files", "revisitop1m", seed)
    habitats = HabitatPool.for_dataset("revisitop1m", seed)
    lines = []
    for k, h in enumerate(_hex_ids(rng, size.images)):
        rel = f"{h[:2]}/{h}.jpg"
        obj = object_class("revisitop1m", k + 1) if rng.uniform() < 0.7 else None
        w, hgt = _image_wh(rng, size.image_wh)
        view = VIEWS["easy" if rng.uniform() < 0.5 else "hard"]
        img, _ = render_view(obj, view, stable_rng("image", "revisitop1m", seed, h), w, hgt, habitats)
        save_jpeg(top / "jpg" / rel, img)
        lines.append(rel)
    write_lines(top / "revisitop1m.txt", sorted(lines))
