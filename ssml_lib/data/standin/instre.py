"""The INSTRE stand-in in the layout of the real files (:mod:`ssml_lib.data.instre`): object classes spread over
``INSTRE-S1/``, ``INSTRE-S2/`` and ``INSTRE-M/`` (one folder a class, images ``001.jpg``, ...), the split file
``gnd_instre.mat`` as Iscen et al. share it (``imlist``, ``qimlist``, ``gnd`` with 1-based ``ok`` and ``bbx`` as
``[x y w h]``) and the training list ``train.txt`` (``<path>,<label>``).

Per class: ``queries_per_landmark`` query views (a clear, smaller view with context; the box holds the
object), then ``easy_per_landmark`` clear and ``hard_per_landmark`` strongly transformed database views. The
training list holds the database images (our choice: the split's queries stay out of training). Objects come
from the SOP class space in studio surroundings (objects, not buildings, as INSTRE's are).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .classes import object_class, stable_rng
from .habitats import HabitatPool
from .landmarks import _image_wh
from .output import save_jpeg, write_lines
from .paper_benchmarks import _render
from .sizes import RevisitedSize

COLLECTIONS = ("INSTRE-S1", "INSTRE-S2", "INSTRE-M")
NAMESPACE = "sop-instre"  # the SOP class space (objects), its own classes


def write_split_file(path: Path, imlist: list[str], qimlist: list[str], ok: list[list[int]],
                     bbx: list[list[float]]) -> None:
    """``gnd_instre.mat``: ``ok`` given 0-based, written 1-based; ``bbx`` as ``[x y w h]``."""
    from scipy.io import savemat

    cells = lambda names: np.array([np.array(n) for n in names] + [None], dtype=object)[:-1][None]  # noqa: E731
    gnd = np.empty((1, len(qimlist)), dtype=[("ok", object), ("bbx", object)])
    for q, (pos, box) in enumerate(zip(ok, bbx)):
        gnd[0, q] = (np.asarray(pos, dtype=np.float64)[None] + 1, np.asarray(box, dtype=np.float64)[None])
    savemat(str(path), {"imlist": cells(imlist), "qimlist": cells(qimlist), "gnd": gnd})
    data = path.read_bytes()  # the MAT header's 116 text bytes carry a timestamp: fix them (same seed, same bytes)
    path.write_bytes(b"MATLAB 5.0 MAT-file, ssml stand-in".ljust(116) + data[116:])


def write_instre(top: Path, size: RevisitedSize, seed: int) -> None:
    habitats = HabitatPool.for_dataset("sop", seed, namespace="instre")
    imlist, qimlist, ok, bbx, train = [], [], [], [], []
    for c in range(size.landmarks):
        folder = f"{COLLECTIONS[c % len(COLLECTIONS)]}/{c + 1:02d}_object"
        obj, rng = object_class(NAMESPACE, c + 1), stable_rng("files", "instre", seed, c)
        views = ["query"] * size.queries_per_landmark + ["easy"] * size.easy_per_landmark + \
            ["hard"] * size.hard_per_landmark
        first_db = len(imlist)
        for k, view in enumerate(views):
            name = f"{folder}/{k + 1:03d}.jpg"
            w, h = _image_wh(rng, size.image_wh)
            img, box = _render(obj, view, ("instre", seed, name), w, h, habitats, need_box=view == "query")
            save_jpeg(top / name, img)
            if view == "query":
                qimlist.append(name)
                x1, y1, x2, y2 = (float(v) for v in box)
                bbx.append([x1, y1, x2 - x1, y2 - y1])
            else:
                imlist.append(name)
                train.append(f"{name},{c}")
        ok += [list(range(first_db, len(imlist)))] * size.queries_per_landmark
    write_split_file(top / "gnd_instre.mat", imlist, qimlist, ok, bbx)
    write_lines(top / "train.txt", train)


__all__ = ["COLLECTIONS", "write_instre", "write_split_file"]
