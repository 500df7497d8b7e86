"""The Spreading paper's ablations on CIFAR-10 (Ye et al. 2019, Sec. 4.3): Table 7 (one augmentation left out at a
time) and Table 8 (no augmentation; only the hard or only the easy half of the negatives), weighted kNN accuracy
in the Table 1 setting.

Every row is the ``spreading`` row of Table 1 (:mod:`~ssml_lib.experiments.paper_cifar`: the same recipe, layers of
settings, run folders, per-epoch kNN and report) with one switch set:

* ``augment_without`` (a model/eval key, read by ``train_row`` into ``cifar_transform(without=...)``): the named
  training steps left out, ``crop`` (RandomResizedCrop, the paper's R), ``grey`` (RandomGrayscale, G), ``jitter``
  (ColorJitter, C), ``flip`` (RandomHorizontalFlip, F); all four for "No DA" (both views are the image itself).
* ``negatives`` (the method's setting, :func:`ssml_lib.losses.spreading_loss`): ``hard_half`` / ``easy_half`` keep
  each anchor's most / least similar half of its 2B - 2 in-batch negatives.

Rows: Table 7 ``full``, ``no_crop``, ``no_grey``, ``no_jitter``, ``no_flip``; Table 8 ``full``, ``no_da``, ``hard``,
``easy``. Paper-scale settings: ``params/<table>/<row>.yaml`` (the Table 1 recipe and the row's switch).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..data.transforms import CIFAR_AUGMENTATIONS
from ..errors import ConfigError
from .paper_cifar import MODEL_DEFAULTS, STANDIN, TINY, PaperTable, run_paper_cifar_notebook

TABLE7 = "paper_spreading_table7_augmentation"
TABLE8 = "paper_spreading_table8_sampling"
FULL = ("spreading", {}, "")
# row -> (registry method, the row's fixed settings, the reference CSV's setting column)
ROWS7: dict[str, tuple[str, dict, str]] = {
    "full": FULL,
    "no_crop": ("spreading", {"augment_without": ["crop"]}, "no_crop"),
    "no_grey": ("spreading", {"augment_without": ["grey"]}, "no_grey"),
    "no_jitter": ("spreading", {"augment_without": ["jitter"]}, "no_jitter"),
    "no_flip": ("spreading", {"augment_without": ["flip"]}, "no_flip"),
}
ROWS8: dict[str, tuple[str, dict, str]] = {
    "full": FULL,
    "no_da": ("spreading", {"augment_without": list(CIFAR_AUGMENTATIONS)}, "no_da"),
    "hard": ("spreading", {"negatives": "hard_half"}, "hard"),
    "easy": ("spreading", {"negatives": "easy_half"}, "easy"),
}
ABLATION_MODEL_DEFAULTS = dict(MODEL_DEFAULTS, augment_without=[])
NEEDS = ("(ResNet18, 200 epochs) and needs the real CIFAR-10: pass data_root (the folder holding "
         "cifar-10-batches-py/).")
TABLES: dict[str, PaperTable] = {
    TABLE7: PaperTable(TABLE7, ROWS7, STANDIN, TINY, ABLATION_MODEL_DEFAULTS, NEEDS, paper_table="Table 7",
                       paper_figure=""),
    TABLE8: PaperTable(TABLE8, ROWS8, STANDIN, TINY, ABLATION_MODEL_DEFAULTS, NEEDS, paper_table="Table 8",
                       paper_figure=""),
}


def run_paper_spreading_ablation_notebook(table: str, params: Mapping[str, Any]):
    """The notebook's one call: the rows named by ``params["rows"]`` of ``table`` (``TABLE7`` or ``TABLE8``),
    trained and scored as Table 1's rows, beside the paper's numbers."""
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r}; the Spreading ablation tables are: {', '.join(TABLES)}.")
    return run_paper_cifar_notebook({**params, "method": params.get("rows")}, table=TABLES[table])
