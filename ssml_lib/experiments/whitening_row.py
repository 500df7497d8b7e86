"""The ``whitening: pca`` evaluation setting: learned PCA-whitening fitted on the row's training set.

The training images (GLDv2 for the InsCLR paper's tables: the row's class subset, labels unread) are embedded by
the row's model exactly as the database images are (thumbnail to ``max_side``, the eval scales, L2-normalised);
:func:`ssml_lib.eval.learn_pca_whitening` fits the mean and the whitening on them, and every evaluation
descriptor is then whitened and L2-normalised again. This follows Radenović et al. (2018), whose learned
whitening the InsCLR paper's "ImageNet + PCA" rows apply; they fit it on their own SfM training set, we on the
row's training set (``whitening_images`` caps how many images, drawn with the row's seed).
"""
from __future__ import annotations

import random
from pathlib import Path

import torch

from ..config import RunConfig
from ..eval import learn_pca_whitening


def fit_row_whitening(model: torch.nn.Module, spec, root: Path, run: RunConfig, *, max_side, normalize: str,
                      device: torch.device, standin: bool, progress: bool = True):
    """(fitted PCAWhitening, record for the provenance)."""
    from ..methods.views import Transformed
    from .datasets import open_train_set
    from .evaluate_paper import _Items, _transform

    ecfg = run.eval
    train = open_train_set(spec, root, run, standin)
    which = list(range(len(train)))
    if ecfg.whitening_images is not None and ecfg.whitening_images < len(which):
        which = sorted(random.Random(run.seed).sample(which, ecfg.whitening_images))
    images = _Items(Transformed(train, _transform(normalize, max_side)), which)
    from ..eval import extract_embeddings

    feats, _ = extract_embeddings(model, images, device=device, batch_size=1, stack=ecfg.batch_size,
                                  scales=ecfg.scales, normalize=ecfg.normalize, progress=progress)
    whitening = learn_pca_whitening(feats, ecfg.whitening_dims)
    return whitening, {"whitening": "pca", "fitted_on": f"{spec.train_dataset} train ({train.split})",
                       "n_images": len(which), "of": len(train), "input_dims": int(feats.shape[1]),
                       "kept_dims": whitening.dims, "requested_dims": ecfg.whitening_dims}
