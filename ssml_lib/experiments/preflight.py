"""Everything a table row will read, checked before any work: its training and evaluation sets (list files,
ground-truth pickles), every image in them, the method's settings against the training set, and the protocol's
K against the test split. ``check_row_data`` raises before a run folder, a result or a pre-training exists.

Unreadable or missing images are all named (up to :data:`SHOWN` in the message, every one in a list file under
the cache when there are more). ``max_bad_images`` (a DataConfig field, so ``-p max_bad_images 5``) skips up to
that many of them, over all the row's datasets, and the provenance counts and names them; beyond it, or for a
revisited database or query image (the gnd file indexes them by position), the row is refused.

An image check decodes every file once (8 threads). Its outcome is cached under the cache folder, keyed by the
files' paths, sizes and modification times, so a re-run (the notebook after ``run_table``'s own check, the
evaluation after a torchrun training) does not decode them again.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import ConfigError, DatasetError
from .tables import EVAL_SPLITS, TableSpec

SHOWN = 20  # bad files listed in a message


@dataclass
class RowData:
    """What :func:`check_row_data` found and opened: the training set (bad images left out; None when the row
    trains nothing), the evaluation sets' skipped file-order indices and K per dataset, and the record for the
    provenance."""

    train: Any
    eval_skip: dict = field(default_factory=dict)   # recall dataset -> file-order indices left out of its test split
    ks: dict = field(default_factory=dict)          # recall dataset -> the K evaluated
    record: dict = field(default_factory=dict)


def _counts(standin: bool) -> str:
    return "off" if standin else "warn"


def _check_key(paths) -> Optional[str]:
    """sha256 over (path, size, mtime) of every file; None when one is missing (no cached answer then)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            return None
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def check_images_cached(dataset) -> list:
    """``check_images`` of every image of ``dataset`` (never raising): [(file-order index, path, reason)]."""
    from ..data import check_images
    from ..io import atomic_write_text
    from ..paths import cache_dir

    key = _check_key(dataset.paths)
    cached = cache_dir() / "image_checks" / f"{key}.json" if key is not None else None
    if cached is not None and cached.is_file():
        try:
            return [tuple(b) for b in json.loads(cached.read_text(encoding="utf-8"))["bad"]]
        except (OSError, ValueError, KeyError):
            pass
    bad = check_images(dataset, max_bad=len(dataset.paths)).bad
    if cached is not None:
        atomic_write_text(cached, json.dumps({"n": len(dataset.paths), "bad": bad}) + "\n")
    return bad


def _eval_sets(spec: TableSpec, roots: Mapping[str, Path], standin: bool) -> list:
    """(dataset, split, opened dataset) of every evaluation split; opening a revisited split validates its gnd."""
    from ..data import open_dataset

    out = []
    for name in spec.eval_datasets:
        splits = EVAL_SPLITS[spec.protocol]
        for split in splits:
            out.append((name, split, open_dataset(name, roots[name], split, expect_counts=_counts(standin))))
    if "revisitop1m" in spec.extra_datasets:  # the +R1M distractors are read through their own loader
        from ..data.revisited import open_distractors

        out.append(("revisitop1m", "distractors", open_distractors(roots["revisitop1m"],
                                                                   expect_counts=_counts(standin))))
    return out


def _bad_images_message(table: str, method: str, bad: dict, sizes: dict, limit: int, stuck: list) -> str:
    from ..paths import cache_dir

    total = sum(len(v) for v in bad.values())
    lines, listed = [], 0
    for where, items in bad.items():
        if not items:
            continue
        lines.append(f"  {where}: {len(items)} of {sizes[where]} images")
        for _, path, reason in items:
            if listed < SHOWN:
                lines.append(f"    {path} ({reason})")
            listed += 1
    if total > SHOWN:
        full = cache_dir() / "image_checks" / f"bad_{table}_{method}.txt"
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("".join(f"{w}\t{p}\t{r}\n" for w, items in bad.items() for _, p, r in items),
                        encoding="utf-8")
        lines.append(f"  ... and {total - SHOWN} more; all {total} are listed in {full}")
    if stuck:
        head = (f"{total} image file(s) that {table} / {method} reads are missing or unreadable, and those of "
                f"{', '.join(stuck)} cannot be left out (the ground-truth file indexes the images by position):")
        fix = "restore intact copies of these files (re-extract the dataset's archive)."
    else:
        head = (f"{total} image file(s) that {table} / {method} reads are missing or unreadable, more than "
                f"max_bad_images={limit}:")
        fix = (f"restore intact copies of these files (re-extract the dataset's archive), or pass "
               f"-p max_bad_images {total} to leave them out of training and evaluation (they are counted and "
               "named in the provenance).")
    return "\n".join([head, *lines, f"Fix: {fix}"])


def check_row_data(spec: TableSpec, resolved: Mapping[str, Any], roots: Mapping[str, Path], *,
                   standin: bool) -> RowData:
    """Open and check everything the row reads (see the module docstring); raise before any write."""
    from ..methods.schedule import check_method_data
    from .datasets import open_train_set

    run = resolved["run"]
    sets = _eval_sets(spec, roots, standin)  # first: a damaged gnd file is refused before anything else
    train = open_train_set(spec, roots[spec.train_dataset], run, standin) if run.method != "pretrained" else None
    if train is not None:
        sets.insert(0, (spec.train_dataset, train.split, train))
    bad, sizes = {}, {}
    for name, split, ds in sets:
        where = f"{name} {split}"
        bad[where], sizes[where] = check_images_cached(ds), len(ds)
    limit = run.data.max_bad_images
    total = sum(len(v) for v in bad.values())
    stuck = [f"{name} {split}" for name, split, ds in sets
             if bad[f"{name} {split}"] and ds is not train and spec.protocol != "recall"]
    if total > limit or stuck:
        raise DatasetError(_bad_images_message(spec.name, run.method, bad, sizes, limit, stuck))
    skipped = {w: [p for _, p, _ in items] for w, items in bad.items() if items}
    eval_skip = {}
    for name, split, ds in sets:
        items = bad[f"{name} {split}"]
        if not items:
            continue
        if ds is train:
            train.apply_skip([i for i, _, _ in items])
        else:
            eval_skip[name] = [i for i, _, _ in items]
    if train is not None:
        check_method_data(run.method, resolved["method"], resolved["train"], train)
    ks, dropped = {}, {}
    for name, split, ds in sets:
        if spec.protocol != "recall" or split != "test":
            continue
        n = len(ds) - len(eval_skip.get(name, []))
        fits = tuple(k for k in run.eval.ks if k <= n - 1)
        if fits != tuple(run.eval.ks):
            too_big = [k for k in run.eval.ks if k > n - 1]
            if not (standin and tuple(run.eval.ks) == tuple(spec.ks)) or not fits:
                raise ConfigError(f"Recall@K for K = {too_big} needs more than the {n} test images of {name} "
                                  f"(K <= {n - 1}). Fix: -p ks \"{list(fits) or [1]}\", or evaluate on more data.")
            dropped[name] = {"ks": too_big, "note": f"the stand-in's {name} test split has {n} images: "
                                                    f"Recall@{too_big} not computed"}
        ks[name] = fits
    record = {"checked": sizes, "max_bad_images": limit, "skipped": skipped,
              "n_skipped": sum(len(v) for v in skipped.values())}
    if dropped:
        record["ks_dropped"] = dropped
    return RowData(train, eval_skip, ks, record)


__all__ = ["RowData", "check_images_cached", "check_row_data"]
