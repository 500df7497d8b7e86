"""One InsCLR fit of two 8-image steps on a tiny stand-in training set (a convnet4 at 32 px, seeded): the run
the InsCLR switch tests compare with and without a switch."""
from __future__ import annotations

import warnings

import torch

from ssml_lib.data import build_transform, make_standin, open_dataset
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import fit_method, train_config
from ssml_lib.models import build_model


def fit_tiny_insclr(train_set, out, **settings):
    torch.manual_seed(0)
    net = build_model("convnet4", embedding_size=16, head="norm_linear_norm")
    tf = (build_transform("insclr", True, size=32, resize=36, normalize="resnet"),
          build_transform("noaug", False, size=32, normalize="resnet"))
    train = train_config("insclr", {"epochs": 1, "max_steps": 2, "batch_size": 8, "deterministic": True,
                                    "log_every": 1, "device": "cpu"})
    return fit_method("insclr", model=net, train_set=train_set, method_cfg=METHODS["insclr"].Config(**settings),
                      train_cfg=train, out_dir=out, train_transform=tf[0], test_transform=tf[1], progress=False)


def tiny_cub_train_set(folder):
    root = make_standin("cub200", folder, "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_dataset("cub200", root, "train")
