"""One row of a method paper's small-image table (CIFAR-10/100, SVHN, STL-10): open the data, train with ``fit_method``,
score every epoch with the weighted kNN classifier (used by :mod:`~ssml_lib.experiments.paper_cifar` and
:mod:`~ssml_lib.experiments.paper_isl`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..config import Config
from ..data import open_torchvision_dataset
from ..data.standin import default_standin_root, make_standin, read_standin_marker
from ..data.torchvision_sets import TORCHVISION_SETS
from ..data.transforms import cifar_transform
from ..engine.config import TrainConfig
from ..eval.knn_classifier import weighted_knn_accuracy
from ..methods.views import Transformed


@dataclasses.dataclass(frozen=True)
class Row:
    name: str  # the row (ssml_lib.experiments.paper_cifar.ROWS)
    method: str  # its registry method
    setting: str  # the reference CSV's setting column
    method_cfg: Config
    train_cfg: TrainConfig
    model: dict  # backbone, embedding_size, knn_k, knn_temperature


def config_dict(cfg: Config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def row_digest(row: Row, data_id: str = "") -> str:
    """A short hash of everything a row's training depends on, for its run folder: a run with other method or
    model settings (which ``fit_method``'s stage record does not compare) or other data never reuses it."""
    text = json.dumps([row.method, config_dict(row.method_cfg), config_dict(row.train_cfg), row.model, data_id],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def open_small(dataset: str, data_root: Optional[str], size: str = "default", seed: int = 0):
    """(train, test, standin): the real ``dataset`` (cifar10, cifar100, svhn) under ``data_root``, or its stand-in
    (written on first use). ``train.data_id`` names the data: the stand-in's content hash, or the real folder."""
    folder = TORCHVISION_SETS[dataset][0]  # '' for SVHN: torchvision reads its files from the root itself
    if data_root is None:
        top = make_standin(dataset, default_standin_root(size, seed), size, seed)
        root = top.parent if folder else top
    else:
        root = Path(data_root)
    train = open_torchvision_dataset(dataset, root, "train")
    test = open_torchvision_dataset(dataset, root, "test")
    marker = read_standin_marker(Path(train.root) / folder)
    train.data_id = marker["content_sha256"] if marker else str(Path(train.root).resolve())
    return train, test, marker is not None


def open_cifar10(data_root: Optional[str], size: str = "default", seed: int = 0):
    return open_small("cifar10", data_root, size, seed)


def _device(cfg: TrainConfig) -> torch.device:
    return torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")


@torch.no_grad()
def knn_top1(method, train_view, test_view, k: int, temperature: float, device, batch_size: int = 100,
             num_workers: int = 0) -> float:
    """Weighted kNN top-1 accuracy (percent) of the test images over the training images, both through the
    test transform (batches of 100 in dataset order, as the Spreading CIFAR code)."""
    def embed(ds):
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        was = method.training
        method.eval()
        out = torch.cat([method.embed_batch((x.to(device),)).float().cpu() for x, _, _ in loader])
        method.train(was)
        return out
    acc = weighted_knn_accuracy(embed(train_view), train_view.base.labels, embed(test_view), test_view.base.labels,
                                k=k, temperature=temperature)
    return 100.0 * acc


def row_transforms(model: dict):
    """(test, train) transforms of a row: the CIFAR pipelines at ``input_px`` (test images resized to it) when the
    row's model names one, else at 32 px as they are."""
    px = model.get("input_px")
    flip = model.get("train_flip", True)
    without = tuple(model.get("augment_without", ()))
    return (cifar_transform(False, size=px or 32, resize=px is not None),
            cifar_transform(True, size=px or 32, flip=flip, without=without))


def train_row(row: Row, train_set, test_set, out_dir: Path, *, standin: bool,
              final_eval: Optional[Callable[[torch.nn.Module, Any, Any, torch.device], dict]] = None,
              epoch_eval: Optional[Callable[[Any, Any], dict]] = None, knn_set=None) -> list[dict]:
    """Train ``row`` into ``out_dir`` and return its per-epoch records, epoch 0 = the untrained network; epochs
    count the backbone's training only (ISL's GAN stages leave it as it is). ``final_eval(model, train_view,
    test_view, device)`` adds its scores of the trained network to the last record; ``epoch_eval(method, ctx)``
    (a figure's measurement) is logged after every backbone epoch and kept in its record under ``extra``. The kNN
    classifier (and ``final_eval``) read the labelled ``knn_set`` (default: the training set; STL-10 trains on
    unlabelled images too and scores over its labelled training images)."""
    from ..methods.schedule import build_method
    from ..models import build_model

    test_tf, train_tf = row_transforms(row.model)
    train_view = Transformed(knn_set if knn_set is not None else train_set, test_tf)
    test_view = Transformed(test_set, test_tf)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(row.train_cfg.seed)
        model = build_model(row.model["backbone"], pooling="avg", head="linear",
                            embedding_size=row.model["embedding_size"])
    k, temp, device = row.model["knn_k"], row.model["knn_temperature"], _device(row.train_cfg)
    workers = row.train_cfg.num_workers
    start = build_method(row.method, model, row.method_cfg, train_transform=train_tf, test_transform=test_tf,
                         seed=row.train_cfg.seed).to(device)
    history = [{"epoch": 0, "knn_top1": knn_top1(start, train_view, test_view, k, temp, device, num_workers=workers)}]
    if row.method != "pretrained":
        history += _fit(row, model, train_set, train_tf, test_tf, train_view, test_view, out_dir, standin,
                        epoch_eval)
    if final_eval is not None:
        history[-1].update(final_eval(model.to(device), train_view, test_view, device))
    return history


def _fit(row: Row, model, train_set, train_tf, test_tf, train_view, test_view, out_dir: Path, standin: bool,
         epoch_eval: Optional[Callable[[Any, Any], dict]] = None):
    from ..methods.schedule import fit_method

    k, temp, workers = row.model["knn_k"], row.model["knn_temperature"], row.train_cfg.num_workers

    def eval_fn(method, ctx) -> dict[str, Any]:
        if getattr(method, "kind_round", ("backbone",))[0] == "gan":  # ISL's GAN stage: the backbone is frozen
            return {}
        out = {"knn_top1": knn_top1(method, train_view, test_view, k, temp, ctx.device, num_workers=workers)}
        return {**out, "extra": epoch_eval(method, ctx)} if epoch_eval is not None else out

    run = fit_method(row.method, model=model, train_set=train_set, method_cfg=row.method_cfg,
                     train_cfg=row.train_cfg, out_dir=out_dir, train_transform=train_tf, test_transform=test_tf,
                     eval_fn=eval_fn, progress=False, standin=standin)
    history: list[dict] = []
    for stage in run.stages:
        if stage.name.endswith("_gan"):  # ISL: the GAN trains on a frozen backbone
            continue
        done = history[-1]["epoch"] if history else 0
        history += [{"epoch": done + r["epoch"] + 1, "knn_top1": r.get("knn_top1"), "loss": r.get("loss"),
                     "wall_s": r.get("wall_s"), **({"extra": r.get("extra")} if epoch_eval else {})}
                    for r in stage.history if not r.get("partial")]
    return history


def probe_top1(model: torch.nn.Module, train_view, test_view, device: torch.device,
               features: Callable[[torch.Tensor], torch.Tensor], *, epochs: int, seed: int) -> float:
    """Linear-probe top-1 (%) on ``features(images)`` of the frozen ``model``, both splits through the test
    transform (:func:`ssml_lib.eval.linear_probe.linear_probe_accuracy`: our protocol, seeded, no test-set
    selection)."""
    from ..eval.linear_probe import linear_probe_accuracy

    @torch.no_grad()
    def embed(view):
        loader = torch.utils.data.DataLoader(view, batch_size=100, shuffle=False)
        was = model.training
        model.eval()
        out = torch.cat([features(x.to(device)).float().cpu() for x, _, _ in loader])
        model.train(was)
        return out

    acc = linear_probe_accuracy(embed(train_view), train_view.base.labels, embed(test_view), test_view.base.labels,
                                epochs=epochs, seed=seed, device=device)
    return 100.0 * acc


def evaluate_row(row: Row, history: list[dict], wall_s: float) -> dict:
    """The row's result: its last kNN accuracy, the per-epoch curve and its settings."""
    return {"row": row.name, "method": row.method, "setting": row.setting, "knn_top1": history[-1]["knn_top1"],
            "epochs": history[-1]["epoch"], "curve": history, "wall_s": wall_s, "model": dict(row.model),
            "method_config": config_dict(row.method_cfg), "train_config": config_dict(row.train_cfg)}
