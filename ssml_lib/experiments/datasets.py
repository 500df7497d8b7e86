"""Where a table's datasets are: the stand-in (generated on first use) or the user's ``data_root``.

``data_root`` is a folder holding each dataset's own top folder under its distributed name:

    <data_root>/CUB_200_2011/  cars196/  Stanford_Online_Products/  gldv2/  roxford5k/  rparis6k/  revisitop1m/
                oxford5k/  paris6k/  flickr100k/

The stand-in generator writes exactly these names under ``<cache>/standin/<size>/seed<seed>/``, except that GLDv2
retrieval, whose files sit in the real ``gldv2/`` folder, has a stand-in folder of its own (``gldv2_retrieval/``).
``oxford105k`` / ``paris106k`` are the ``oxford5k`` / ``paris6k`` folders read with ``flickr100k/`` beside them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import DatasetError
from ..paths import standin_root

FOLDERS = {
    "cub200": "CUB_200_2011", "cars196": "cars196", "sop": "Stanford_Online_Products", "gldv2": "gldv2",
    "roxford5k": "roxford5k", "rparis6k": "rparis6k", "revisitop1m": "revisitop1m", "imagenet": "imagenet",
    "oxford5k": "oxford5k", "paris6k": "paris6k", "flickr100k": "flickr100k", "oxford105k": "oxford5k",
    "paris106k": "paris6k", "gldv2_retrieval": "gldv2",
    "instre": "instre",
}
STANDIN_NAME = {"oxford105k": "oxford5k", "paris106k": "paris6k"}  # the stand-in a name's folder comes from
COMPANIONS = {"oxford105k": ("flickr100k",), "paris106k": ("flickr100k",)}  # generated beside it


def standin_folder(size: str, seed: int) -> Path:
    return standin_root() / size / f"seed{seed}"


def dataset_root(name: str, data_root: Optional[str], *, standin_size: str = "default", standin_seed: int = 0) -> Path:
    """The top folder of dataset ``name``: generated stand-in when ``data_root`` is None, else under it."""
    if data_root is None:
        from ..data import make_standin

        folder = standin_folder(standin_size, standin_seed)
        for companion in COMPANIONS.get(name, ()):
            make_standin(companion, folder, size=standin_size, seed=standin_seed)
        return Path(make_standin(STANDIN_NAME.get(name, name), folder, size=standin_size, seed=standin_seed))
    base = Path(data_root).expanduser()
    if not base.is_dir():
        raise DatasetError(f"data_root {str(base)!r} does not exist. Pass the folder that holds the datasets' "
                           f"own folders ({', '.join(sorted(set(FOLDERS.values()) - {'imagenet'}))}), e.g. "
                           "-p data_root /data; or leave data_root out to use the stand-in.")
    return base / FOLDERS[name]


def standin_data(names, data_root: Optional[str]) -> Optional[dict]:
    """What of ``data_root`` is stand-in data: ``{'size': name or None, 'datasets': {dataset: marker summary}}``
    for the datasets ``names`` whose folders carry the stand-in generator's completion marker, else None (real
    data, or no data_root). Reads only the markers; any stand-in folder makes the row's results stand-in."""
    import dataclasses
    import json

    from ..data.standin import SIZES, read_standin_marker

    if data_root is None:
        return None
    base = Path(data_root).expanduser()
    found = {}
    for name in dict.fromkeys(names):
        marker = read_standin_marker(base / FOLDERS[name])
        if marker is None:
            continue
        kind = STANDIN_NAME.get(name, name)
        size = next((s for s, table in SIZES.items() if kind in table and
                     json.loads(json.dumps(dataclasses.asdict(table[kind]))) == marker.get("size")), None)
        found[name] = {"folder": str(base / FOLDERS[name]), "size": size, "seed": marker.get("seed"),
                       "generator_version": marker.get("generator_version"),
                       "content_sha256": marker.get("content_sha256")}
    if not found:
        return None
    sizes = {d["size"] for d in found.values()}
    return {"passed_as_data_root": str(data_root), "size": sizes.pop() if len(sizes) == 1 else None,
            "real": [n for n in dict.fromkeys(names) if n not in found], "datasets": found}


def open_train_set(spec, root: Path, run, standin: bool):
    """The table's training split (untransformed), GLDv2 through its seeded class subset (or the user's file)."""
    from ..data import make_gldv2_subset, open_dataset
    from ..paths import runs_dir

    options: dict = {"expect_counts": "off" if standin else "warn"}
    if spec.train_dataset == "gldv2":
        subset = run.data.gldv2_subset_file
        if subset is None and run.data.gldv2_fraction < 1.0:
            out = runs_dir() / "gldv2_subsets" / f"{'standin' if standin else 'real'}_f{run.data.gldv2_fraction:g}" \
                f"_s{run.seed}.csv"
            subset = out if out.is_file() else make_gldv2_subset(root, out, fraction=run.data.gldv2_fraction,
                                                                 seed=run.seed)
        options["subset_file"] = str(subset) if subset is not None else None
        options = {k: v for k, v in options.items() if v is not None}
    return open_dataset(spec.train_dataset, root, "train", None, **options)
