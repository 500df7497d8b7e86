"""The thesis's tables as data: what each one trains on, evaluates on, with which backbone and metrics.

One :class:`TableSpec` per table notebook (README, Tables and notebooks). The runner (:mod:`ssml_lib.experiments.runner`)
reads these; notebooks name a table and a method and nothing else is implied.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class TableSpec:
    name: str
    caption: str
    train_dataset: str                 # open_dataset name of the training set
    eval_datasets: tuple[str, ...]     # where the test split is evaluated
    protocol: str                      # 'recall' (R@K + NMI on the test split) or 'revisited' (mAP E/M/H)
    ks: tuple[int, ...]
    backbone: str                      # the paper's backbone
    init: str                          # 'imagenet' or 'scratch'
    methods: tuple[str, ...]           # the rows the thesis reports (registry names)
    per_stage: bool = False            # evaluate after every training stage (Table 8: InsCLR per cycle)


_DML_PRETRAINED = ("pretrained", "supervised", "spreading", "insclr", "stml")
_DML_SCRATCH = ("spreading", "insclr", "stml")

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("table1_cub_pretrained", "Results (%) on CUB200-2011 using ImageNet pre-trained GoogLeNet",
              "cub200", ("cub200",), "recall", (1, 2, 4, 8), "googlenet", "imagenet", _DML_PRETRAINED),
    TableSpec("table2_cub_scratch", "Results (%) on CUB200-2011 using ResNet18 from scratch",
              "cub200", ("cub200",), "recall", (1, 2, 4, 8), "resnet18", "scratch", _DML_SCRATCH),
    TableSpec("table3_cars_pretrained", "Results (%) on CARS196 using ImageNet pre-trained GoogLeNet",
              "cars196", ("cars196",), "recall", (1, 2, 4, 8), "googlenet", "imagenet", _DML_PRETRAINED),
    TableSpec("table4_cars_scratch", "Results (%) on CARS196 using ResNet18 from scratch",
              "cars196", ("cars196",), "recall", (1, 2, 4, 8), "resnet18", "scratch", _DML_SCRATCH),
    TableSpec("table5_sop_pretrained", "Results (%) on SOP using ImageNet pre-trained GoogLeNet",
              "sop", ("sop",), "recall", (1, 10, 100), "googlenet", "imagenet", _DML_PRETRAINED),
    TableSpec("table6_sop_scratch", "Results (%) on SOP using ResNet18 from scratch",
              "sop", ("sop",), "recall", (1, 10, 100), "resnet18", "scratch", _DML_SCRATCH),
    TableSpec("table7_gldv2", "Results (%) on rOxford5k & rParis6k using ImageNet pre-trained ResNet101 "
              "fine-tuned on 6% GLDv2", "gldv2", ("roxford5k", "rparis6k"), "revisited", (1, 5, 10),
              "resnet101", "imagenet", ("pretrained", "supervised", "spreading", "insclr", "stml")),
    TableSpec("table8_insclr_cycles", "Results (%) of InsCLR per training cycle on rOxford5k & rParis6k "
              "(ImageNet pre-trained ResNet101, 6% GLDv2)", "gldv2", ("roxford5k", "rparis6k"), "revisited",
              (1, 5, 10), "resnet101", "imagenet", ("pretrained", "insclr"), per_stage=True),
    TableSpec("table9_gldv2_scratch", "Results (%) on rOxford5k & rParis6k using ResNet18 trained on 6% GLDv2",
              "gldv2", ("roxford5k", "rparis6k"), "revisited", (1, 5, 10), "resnet18", "scratch",
              _DML_SCRATCH),
)}


def get_table(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown table {name!r}; the tables are: {', '.join(TABLES)}. Check the notebook's `table` "
            "parameter or the params file name."
        ) from None
