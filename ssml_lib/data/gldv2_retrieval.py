"""GLDv2 retrieval (Weyand et al. 2020): the index images and the test queries with retrieval ground truth.

``<root>`` (the GLDv2 folder) holds ``index.csv`` and ``test.csv`` (header ``id``), ``retrieval_solution_v2.1.csv``
(``id,images,Usage``: the relevant index ids space-separated, Usage Public, Private or Ignored with images
``None``), and the images ``index/<a>/<b>/<c>/<id>.jpg`` and ``test/<a>/<b>/<c>/<id>.jpg``.

``index`` split: every row of index.csv, in file order, label -1. ``test`` split: the solution's Public and
Private queries (``usage`` picks one subset or both), in test.csv order, label = position; Ignored queries are
left out. The test dataset carries ``usage`` (per query), ``relevant_ids`` (per query, the solution's index
ids) and :meth:`relevant_positions` maps them onto an opened index split for
:func:`ssml_lib.eval.gldv2_retrieval_map`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import DatasetError, GroundTruthError
from ..eval.gldv2 import read_retrieval_solution
from .base import ImageListDataset, check_count, check_options
from .layout import check_choice, require_file, resolve_root

SOLUTION = "retrieval_solution_v2.1.csv"
USAGES = {"all": ("Public", "Private"), "public": ("Public",), "private": ("Private",)}


def read_id_list(path: Path) -> list[str]:
    """The ids of index.csv / test.csv (header ``id``), in file order."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if not lines or lines[0] != "id":
        raise DatasetError(f"gldv2_retrieval: {path} must start with the header 'id'; re-download it.")
    ids = [line.split(",")[0] for line in lines[1:] if line]
    bad = next((i for i in ids if len(i) < 3), None)
    if bad is not None:
        raise DatasetError(f"gldv2_retrieval: {path} holds the id {bad!r}; GLDv2 ids are 16 hex characters.")
    return ids


class RetrievalQueries(ImageListDataset):
    """The test split: adds ``image_ids``, ``usage`` and ``relevant_ids``."""

    per_item = ImageListDataset.per_item + ("image_ids", "usage", "relevant_ids")

    def relevant_positions(self, index: ImageListDataset) -> list[np.ndarray]:
        """Per query, the positions in ``index`` (an opened index split) of its relevant images.

        Relevant ids missing from ``index`` (left out with ``skip``) have no position; the metric still counts
        them through ``n_relevant``.
        """
        where = {image_id: i for i, image_id in enumerate(index.image_ids)}
        return [np.asarray([where[r] for r in ids if r in where], dtype=np.int64) for ids in self.relevant_ids]

    @property
    def n_relevant(self) -> np.ndarray:
        return np.asarray([len(ids) for ids in self.relevant_ids], dtype=np.int64)


def open_gldv2_retrieval(
    root, split: str, transform: Optional[Callable] = None, *, usage: str = "all", expect_counts: str = "warn",
    skip: Optional[Iterable[int]] = None,
) -> ImageListDataset:
    """The ``index`` or ``test`` split of GLDv2 retrieval (``usage``: 'all', 'public' or 'private')."""
    name = "gldv2_retrieval"
    check_choice("split", split, ("index", "test"), name)
    check_choice("usage", usage, tuple(USAGES), name)
    check_options(name, expect_counts)
    root = resolve_root(name, root, (SOLUTION, "index.csv"),
                        f"the GLDv2 folder with index.csv, test.csv, {SOLUTION}, index/ and test/")
    index_ids = read_id_list(require_file(name, root, "index.csv", "Download index.csv from the GLDv2 site."))
    if split == "index":
        ds = ImageListDataset(name, split, root, [str(root / "index" / _rel(i)) for i in index_ids],
                              np.full(len(index_ids), -1, dtype=np.int64), transform)
        ds.image_ids = index_ids
        ds.per_item = ds.per_item + ("image_ids",)
        check_count(name, split, len(ds), expect_counts)
        return ds.apply_skip(skip)
    test_ids = read_id_list(require_file(name, root, "test.csv", "Download test.csv from the GLDv2 site."))
    solution = require_file(name, root, SOLUTION, f"Download {SOLUTION} (the retrieval ground truth).")
    public, private, _ = read_retrieval_solution(solution)
    _check_solution(solution, public, private, set(test_ids), set(index_ids))
    wanted = {**(public if "Public" in USAGES[usage] else {}), **(private if "Private" in USAGES[usage] else {})}
    ids = [i for i in test_ids if i in wanted]
    ds = RetrievalQueries(name, split, root, [str(root / "test" / _rel(i)) for i in ids], np.arange(len(ids)),
                          transform)
    ds.image_ids, ds.relevant_ids = ids, [wanted[i] for i in ids]
    ds.usage = np.asarray(["Public" if i in public else "Private" for i in ids])
    ds.solution_file = solution
    check_count(name, f"test_{usage}", len(ds), expect_counts)
    return ds.apply_skip(skip)


def _rel(image_id: str) -> str:
    return f"{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"


def _check_solution(path: Path, public: dict, private: dict, test_ids: set, index_ids: set) -> None:
    for subset in (public, private):
        for qid, relevant in subset.items():
            if qid not in test_ids:
                raise GroundTruthError(f"{path}: query {qid} is not in test.csv; the solution file and test.csv "
                                       "come from different releases. Re-download both (v2.1).")
            missing = next((r for r in relevant if r not in index_ids), None)
            if missing is not None:
                raise GroundTruthError(f"{path}: query {qid} lists {missing}, which is not in index.csv. "
                                       "Re-download index.csv and the solution file (v2.1).")
    if not public and not private:
        raise GroundTruthError(f"{path} has no Public or Private query; re-download it.")
