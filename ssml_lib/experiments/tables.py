"""The thesis's tables as data: what each one trains on, evaluates on, with which backbone and metrics.

One :class:`TableSpec` per table notebook (README, Tables and notebooks); :data:`PAPER_TABLES` holds the method
papers' own tables (their notebooks are named ``paper_<method>_table<N>_...``). The runner (:mod:`ssml_lib.experiments.runner`)
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
    protocol: str                      # 'recall' (R@K + NMI on the test split) or 'revisited' (mAP E/M/H);
    #                                    the papers' tables: 'revisited_r1m', 'original', 'gldv2_retrieval'
    ks: tuple[int, ...]
    backbone: str                      # the paper's backbone
    init: str                          # 'imagenet' or 'scratch'
    methods: tuple[str, ...]           # the rows the thesis reports (registry names)
    per_stage: bool = False            # evaluate after every training stage (Table 8: InsCLR per cycle)
    extra_datasets: tuple[str, ...] = ()  # read besides the eval datasets (the +R1M distractors)


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


# The InsCLR paper's (Deng et al. 2021) retrieval benchmarks, trained on GLDv2 as the thesis's Table 7 (the
# paper's own 1.2M-image GLDv2 set would be gldv2_fraction 1.0 with its >= 15-image filter; see the params files).
_INSCLR = "InsCLR paper (Deng et al. 2021)"
PAPER_TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("paper_insclr_table3_revisited", f"{_INSCLR}, Table 3: rOxford5k / rParis6k Medium and Hard mAP, "
              "without and with the R1M distractors", "gldv2", ("roxford5k", "rparis6k"), "revisited_r1m", (1, 5, 10),
              "resnet101", "imagenet", ("pretrained", "insclr"), extra_datasets=("revisitop1m",)),
    TableSpec("paper_insclr_table4_oxford_paris", f"{_INSCLR}, Table 4: original Oxford5k / Paris6k mAP and "
              "their 105k / 106k versions", "gldv2", ("oxford5k", "oxford105k", "paris6k", "paris106k"), "original",
              (1,), "resnet101", "imagenet", ("pretrained", "insclr")),
    TableSpec("paper_insclr_table5_gldv2_retrieval", f"{_INSCLR}, Table 5: GLDv2 retrieval mAP@100, Public "
              "(validation) and Private (test) queries", "gldv2", ("gldv2_retrieval",), "gldv2_retrieval", (1,),
              "resnet101", "imagenet", ("pretrained", "insclr")),
    TableSpec("paper_insclr_table6_instre", f"{_INSCLR}, Table 6: INSTRE mAP (the split of Iscen et al.), an "
              "ImageNet ResNet-50 fine-tuned on INSTRE", "instre", ("instre",), "original", (1,), "resnet50",
              "imagenet", ("pretrained", "insclr")),
)}
RETRIEVAL_PROTOCOLS = ("revisited", "revisited_r1m", "original", "gldv2_retrieval")
EVAL_SPLITS = {"recall": ("test",), "revisited": ("db", "query"), "revisited_r1m": ("db", "query"),
               "original": ("db", "query"), "gldv2_retrieval": ("index", "test")}


def get_table(name: str) -> TableSpec:
    try:
        return TABLES[name] if name in TABLES else PAPER_TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown table {name!r}; the tables are: {', '.join([*TABLES, *PAPER_TABLES])}. Check the notebook's `table` "
            "parameter or the params file name."
        ) from None


# The Spreading paper's (Ye et al. 2019) unseen-category tables (its §4.2): trained on the first half of the
# classes, R@K and NMI on the other half, as the thesis's DML tables; `pretrained` is the paper's "Initial (FC)"
# (Tables 3-5: the ImageNet network with its new, untrained 128-d FC) or "Random" (Table 6: the untrained network).
_SPREADING = "Spreading paper (Ye et al. 2019)"
_SPREADING_ROWS = ("pretrained", "spreading", "nce", "mom")
PAPER_TABLES.update({t.name: t for t in (
    TableSpec("paper_spreading_table3_cub", f"{_SPREADING}, Table 3: results (%) on CUB200, unseen test classes, "
              "ImageNet pre-trained Inception-V1", "cub200", ("cub200",), "recall", (1, 2, 4, 8), "googlenet",
              "imagenet", _SPREADING_ROWS),
    TableSpec("paper_spreading_table4_sop", f"{_SPREADING}, Table 4: results (%) on Product (SOP), unseen test "
              "classes, ImageNet pre-trained Inception-V1", "sop", ("sop",), "recall", (1, 10, 100), "googlenet",
              "imagenet", _SPREADING_ROWS),
    TableSpec("paper_spreading_table5_cars", f"{_SPREADING}, Table 5: results (%) on Car196, unseen test classes, "
              "ImageNet pre-trained Inception-V1", "cars196", ("cars196",), "recall", (1, 2, 4, 8), "googlenet",
              "imagenet", _SPREADING_ROWS),
    TableSpec("paper_spreading_table6_sop_scratch", f"{_SPREADING}, Table 6: results (%) on Product (SOP) with a "
              "ResNet18 trained from scratch", "sop", ("sop",), "recall", (1, 10, 100), "resnet18", "scratch",
              _SPREADING_ROWS),
)})
