"""The ISL paper's Table 1 (Wang et al., ICCV 2021): top-1 accuracy on CIFAR-10, CIFAR-100 and SVHN of AlexNet,
ResNet18 and ResNet50 trained without labels, by the weighted kNN classifier on the FC (128-d embedding) features
and by a linear classifier on the conv5 features.

One notebook call runs one dataset and one architecture (``backbone``: alexnet, resnet18, resnet50) for the rows
asked for: ``pretrained`` (the untrained network: the paper's "Random"), ``npsoftmax`` (Wu et al.'s memory-bank
softmax: the paper's "Instance"), ``isl_no_hpe`` ("ISL w/o HPE": ``isl`` with ``hard_positive_weight: 0``, which
removes exactly the hard-positive term) and ``isl``. Each row is trained and scored as the Spreading table's
(:mod:`~ssml_lib.experiments.paper_cifar`: same layers of settings, same run folders, kNN after every epoch of
backbone training), and its final network is also scored by the linear probe on conv5.

Settings: on the stand-in :data:`STANDIN` (a convnet4 unless ``network`` names another) and, for ISL,
:data:`STANDIN_ISL`; at paper scale ``params/paper_isl_table1/<row>.yaml`` (real data only) with the
architecture's CIFAR network; then the notebook's ``network``, ``epochs``, ``device`` and ``seed``.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import torch

from ..errors import ConfigError
from ..paths import results_dir, runs_dir, standin_results_base
from .paper_cifar import PaperTable, _as_rows, one_thread, resolve_row
from .paper_cifar_run import evaluate_row, open_small, probe_top1, row_digest, train_row

TABLE = "paper_isl_table1"
DATASETS = ("cifar10", "cifar100", "svhn")
ARCHITECTURES = {"alexnet": "alexnet_cifar", "resnet18": "resnet18_cifar", "resnet50": "resnet50_cifar"}
ROWS: dict[str, tuple[str, dict, str]] = {
    "pretrained": ("pretrained", {}, ""),
    "npsoftmax": ("npsoftmax", {}, ""),
    "isl_no_hpe": ("isl", {"hard_positive_weight": 0.0}, "no_hpe"),
    "isl": ("isl", {}, ""),
}
# Stand-in (our choice, as the Spreading table's): convnet4, batch 64, lr 0.003 (the paper's 0.03 / 10), constant
# lr as the ISL code's small-set schedule starts; ``epochs`` is per ISL round.
STANDIN = dict(optimizer="sgd", lr=0.003, momentum=0.9, weight_decay=5.0e-4, schedule="constant",
               backbone="convnet4", embedding_size=128, epochs=2, batch_size=64)
# ISL on the stand-in: the official schedule's shape shrunk (params/standin/isl.yaml's values).
STANDIN_ISL = dict(isl_rounds=2, isl_gan_epochs=2, isl_mining_max_epochs=3, isl_num_candidates=512)
TINY = dict(epochs=1, batch_size=24)
MODEL_DEFAULTS = dict(backbone="alexnet_cifar", embedding_size=128, knn_k=200, knn_temperature=0.1,
                      train_flip=False, conv5_pool="avg", probe_epochs=100)
ISL_TABLE = PaperTable(TABLE, ROWS, STANDIN, TINY, MODEL_DEFAULTS,
                       "(the paper's recipe, hundreds of epochs) and needs the real dataset: pass data_root (the "
                       "folder holding cifar-10-batches-py/, cifar-100-python/ or the SVHN .mat files).",
                       standin_method={"isl": STANDIN_ISL})
NOTEBOOK_PARAMS = ("method", "dataset", "backbone", "network", "epochs", "paper_scale", "data_root",
                   "standin_size", "device", "seed")


def conv5_probe(model: torch.nn.Module, train_view, test_view, device: torch.device, *, pool: str, epochs: int,
                seed: int) -> dict:
    """Linear-probe top-1 (%) on the pooled conv5 features of the frozen backbone, test transform for both splits
    (:func:`~.paper_cifar_run.probe_top1`)."""
    from ..models.backbones import conv5_features

    return {"lc_top1": probe_top1(model, train_view, test_view, device,
                                  lambda x: conv5_features(model.backbone, x, pool), epochs=epochs, seed=seed)}


def _choice(name: str, value: Any, choices) -> str:
    if value not in choices:
        raise ConfigError(f"{name} {value!r} is not one of {', '.join(choices)}.")
    return value


def run_paper_isl_notebook(params: Mapping[str, Any]):
    """The notebook's one call: resolve every row, open the data, train and score each row (kNN per epoch, the
    linear probe at the end), then the table beside the paper's and the kNN curves."""
    from .paper_isl_report import report

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}  # a notebook passes globals(): only its parameters
    dataset = _choice("dataset", params.get("dataset") or "cifar10", DATASETS)
    arch = _choice("backbone", params.get("backbone") or "alexnet", ARCHITECTURES)
    data_root, size = params.get("data_root"), params.get("standin_size") or "default"
    paper_scale = bool(params.get("paper_scale", False))
    network = params.get("network") or (ARCHITECTURES[arch] if paper_scale else None)
    overrides = {"backbone": network, **{k: params.get(k) for k in ("epochs", "device", "seed")}}
    rows = [resolve_row(r, data_root=data_root, paper_scale=paper_scale, standin_size=size, overrides=overrides,
                        table=ISL_TABLE) for r in _as_rows(params.get("method"), ROWS)]
    train_set, test_set, standin = open_small(dataset, data_root, size, seed=int(params.get("seed") or 0))
    kind = f"standin-{size}" if standin else "real"
    results = []
    for row in rows:
        start = time.perf_counter()
        folder = runs_dir() / TABLE / kind / dataset / f"{row.name}-{row_digest(row, train_set.data_id)}"

        def probe(model, train_view, test_view, device, row=row):
            return conv5_probe(model, train_view, test_view, device, pool=row.model["conv5_pool"],
                               epochs=row.model["probe_epochs"], seed=row.train_cfg.seed)

        with one_thread(standin and (row.train_cfg.device == "cpu" or not torch.cuda.is_available())):
            history = train_row(row, train_set, test_set, folder, standin=standin, final_eval=probe)
        result = evaluate_row(row, history, time.perf_counter() - start)
        result.update(dataset=dataset, architecture=arch, lc_top1=history[-1]["lc_top1"],
                      setting=f"{arch}/{row.setting}" if row.setting else arch)
        results.append(result)
        print(f"{row.name}: kNN top-1 {result['knn_top1']:.1f}%, linear probe on conv5 {result['lc_top1']:.1f}% "
              f"after {result['epochs']} epochs ({result['wall_s']:.0f} s)", flush=True)
    base = standin_results_base(size) if standin else results_dir()
    return report(TABLE, results, dataset=dataset, architecture=arch, standin=standin,
                  size=size if standin else None, base=base, params=params)
