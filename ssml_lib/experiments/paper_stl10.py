"""The Spreading paper's Table 2 (Ye et al. 2019): STL-10 accuracy of a linear classifier and of the weighted kNN
classifier on networks trained without labels on the 5,000 labelled training images (``train_split: train``, the
paper's "5K") or on those and the 100,000 unlabelled ones (``train+unlabeled``, "105K").

Each row is trained and scored as the Spreading paper's CIFAR-10 table (:mod:`~ssml_lib.experiments.paper_cifar`:
same layers of settings, same run folders, kNN after every epoch), "in the same experimental setting": the kNN
classifier (k = 200, T = 0.1) scores the 8,000 test images over the 5,000 labelled training images (whatever the
network trained on, as the official STL-10 code), and at the end a linear classifier is fitted on the labelled
training images' embeddings (:func:`~.paper_cifar_run.probe_top1`). Rows: ``pretrained`` (the paper's RandomCNN),
``spreading``, ``npsoftmax`` and ``nce``; DeepCluster and the rows the paper takes from another paper show the
paper's number only.

Settings: on the stand-in :data:`STANDIN` (the CIFAR table's, with the 96 px images brought to 32 px); at paper
scale ``params/paper_spreading_table2_stl10/<row>.yaml`` (real data only); then the notebook's ``epochs``,
``device`` and ``seed``.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import torch

from ..errors import ConfigError
from ..paths import results_dir, runs_dir, standin_results_base
from .paper_cifar import STANDIN as CIFAR_STANDIN
from .paper_cifar import TINY, PaperTable, _as_rows, one_thread, resolve_row
from .paper_cifar_run import evaluate_row, open_small, probe_top1, row_digest, train_row

TABLE = "paper_spreading_table2_stl10"
ROWS: dict[str, tuple[str, dict, str]] = {
    "pretrained": ("pretrained", {}, ""),
    "spreading": ("spreading", {}, ""),
    "npsoftmax": ("npsoftmax", {}, ""),
    "nce": ("nce", {}, ""),
}
TRAIN_SPLITS = {"train": "5K", "train+unlabeled": "105K"}  # the split trained on -> the paper's "Training" column
# Stand-in (our choice): the CIFAR table's recipe (convnet4, lr 0.003, 3 epochs, batch 64), its 96 px images at 32 px
# (about nine times fewer operations a step on a CPU than at 96 px).
STANDIN = dict(CIFAR_STANDIN, input_px=32)
MODEL_DEFAULTS = dict(backbone="resnet18_cifar", embedding_size=128, knn_k=200, knn_temperature=0.1, input_px=96,
                      probe_epochs=100)
STL10_TABLE = PaperTable(TABLE, ROWS, STANDIN, TINY, MODEL_DEFAULTS,
                         "(ResNet18, 200 epochs) and needs the real STL-10: pass data_root (the folder holding "
                         "stl10_binary/).", dataset="stl10")
NOTEBOOK_PARAMS = ("method", "train_split", "epochs", "paper_scale", "data_root", "standin_size", "device", "seed")


def open_stl10(data_root, train_split: str, size: str = "default", seed: int = 0):
    """(training set of ``train_split``, labelled training set, test set, standin)."""
    from ..data import open_torchvision_dataset

    labelled, test, standin = open_small("stl10", data_root, size, seed)
    if train_split == "train":
        return labelled, labelled, test, standin
    train = open_torchvision_dataset("stl10", labelled.root, train_split)
    train.data_id = labelled.data_id
    return train, labelled, test, standin


def run_paper_stl10_notebook(params: Mapping[str, Any]):
    """The notebook's one call: resolve every row, open the data, train each row on ``train_split`` and score it
    (kNN per epoch, the linear classifier at the end), then the table beside the paper's and the kNN curves."""
    from .paper_stl10_report import report

    params = {k: params.get(k) for k in NOTEBOOK_PARAMS}  # a notebook passes globals(): only its parameters
    split = params.get("train_split") or "train"
    if split not in TRAIN_SPLITS:
        raise ConfigError(f"train_split {split!r} is not one of {', '.join(TRAIN_SPLITS)}.")
    data_root, size = params.get("data_root"), params.get("standin_size") or "default"
    paper_scale = bool(params.get("paper_scale", False))
    overrides = {k: params.get(k) for k in ("epochs", "device", "seed")}
    rows = [resolve_row(r, data_root=data_root, paper_scale=paper_scale, standin_size=size, overrides=overrides,
                        table=STL10_TABLE) for r in _as_rows(params.get("method"), ROWS)]
    train_set, labelled, test_set, standin = open_stl10(data_root, split, size, seed=int(params.get("seed") or 0))
    kind = f"standin-{size}" if standin else "real"
    results = []
    for row in rows:
        start = time.perf_counter()
        run = f"{row.name}-{row_digest(row, train_set.data_id)}"
        folder = runs_dir() / TABLE / kind / split.replace("+", "_") / run

        def linear(model, train_view, test_view, device, row=row):
            return {"linear_top1": probe_top1(model, train_view, test_view, device, model,
                                              epochs=row.model["probe_epochs"], seed=row.train_cfg.seed)}

        with one_thread(standin and (row.train_cfg.device == "cpu" or not torch.cuda.is_available())):
            history = train_row(row, train_set, test_set, folder, standin=standin, final_eval=linear,
                                knn_set=labelled)
        result = evaluate_row(row, history, time.perf_counter() - start)
        trained = row.method != "pretrained"
        result.update(linear_top1=history[-1]["linear_top1"], train_split=split if trained else None,
                      train_images=len(train_set) if trained else 0, setting=TRAIN_SPLITS[split] if trained else "")
        results.append(result)
        print(f"{row.name} ({result['setting'] or 'untrained'}): kNN top-1 {result['knn_top1']:.1f}%, linear "
              f"classifier {result['linear_top1']:.1f}% after {result['epochs']} epochs ({result['wall_s']:.0f} s)",
              flush=True)
    base = standin_results_base(size) if standin else results_dir()
    return report(TABLE, results, standin=standin, size=size if standin else None, base=base, params=params)
