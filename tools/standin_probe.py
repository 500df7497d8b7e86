"""The stand-in design probe: what carries two-view instance discrimination on a stand-in, and does it learn?

Renders a CUB-like stand-in in memory with the generator of ``ssml_lib.data.standin`` (optionally with one of
its nuisances changed), trains a convnet4 at 48 px with a fast in-memory pipeline (Resize 54 + RandomCrop 48 +
flip, the thesis's augmentation at stand-in scale) and reports, on the test classes:

- R@1 on the 128-d embedding and on the 256-d pooled features, for a random network, the stand-in
  "ImageNet" start, a labelled run (normalised softmax) and Spreading (from scratch and from the start);
- ``same_habitat``: how often a query's nearest neighbour shares its habitat (chance 1/12);
- the twin test: every test image gets an *object twin* (same class and pose, new surroundings) and a
  *surroundings twin* (same habitat, texture phases, clutter, light and noise, another class's object); in a
  gallery of all twins, ``object_twin`` / ``surroundings_twin`` are how often a query's nearest neighbour is
  its own object / surroundings twin. A network that identifies images by their surroundings scores high on
  the second.

Usage (about 3-10 CPU minutes per experiment on 2 cores; results as JSON lines, and appended to ``--out``)::

    python tools/standin_probe.py --runs random,start,supervised,spreading,scratch_spreading
    python tools/standin_probe.py --per-image-habitats --runs random,scratch_spreading   # nuisances per image

This is a measurement tool for the generator's design (docs/standin.md), not part of the study's tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssml_lib.data.standin.classes import object_class, stable_rng  # noqa: E402
from ssml_lib.data.standin.habitats import DATASET_STYLES, HABITAT_STYLES, HabitatPool  # noqa: E402
from ssml_lib.data.standin.render import VIEWS, render_view  # noqa: E402
from ssml_lib.losses import spreading_loss  # noqa: E402
from ssml_lib.models import build_model  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def pool_for(name: str, args, seed: int = 0) -> HabitatPool:
    style = HABITAT_STYLES[DATASET_STYLES[name]]
    if args.per_image_habitats:
        style = dataclasses.replace(style, count=100_000)  # every image its own surroundings (the v1 regime)
    if args.no_clutter:
        style = dataclasses.replace(style, clutter=(0, 0))
    if args.no_light:
        style = dataclasses.replace(style, color_cast=0.0, brightness=0.0, contrast=(1.0, 1.0), light_gradient=0.0)
    if args.no_texture:
        style = dataclasses.replace(style, texture_amp=(0.0, 0.0))
    return _LazyPool(name, seed, style) if args.per_image_habitats else HabitatPool(name, seed, style)


class _LazyPool(HabitatPool):
    """A pool too large to draw up front: habitats are built when first picked."""

    def __init__(self, namespace, seed, style):
        self.namespace, self.seed, self.style, self._cache = namespace, seed, style, {}

    def draw(self, rng):
        from ssml_lib.data.standin.habitats import draw_habitat

        i = int(rng.integers(self.style.count))
        if i not in self._cache:
            self._cache[i] = draw_habitat(self.namespace, self.seed, i, self.style)
        return self._cache[i]


def render_set(name, classes, per_class, pool, px=64, twins=False):
    """Images, labels and habitat ids; with ``twins`` also the object and surroundings twins."""
    imgs, labels, habs, obj_twins, sur_twins = [], [], [], [], []
    classes = list(classes)
    for ci, c in enumerate(classes):
        obj = object_class(name, c)
        other = object_class(name, classes[(ci + len(classes) // 2) % len(classes)])
        for k in range(per_class):
            rng = stable_rng("probe", name, c, k)
            hab = pool.draw(stable_rng("probe-habitat", name, c, k))
            img, _ = render_view(obj, VIEWS["dml"], rng, px, px, pool, habitat=hab,
                                 pose_rng=stable_rng("probe-pose", name, c, k))
            imgs.append(img), labels.append(c), habs.append(hab.index)
            if twins:
                new = pool.draw(stable_rng("probe-habitat-twin", name, c, k))
                obj_twins.append(render_view(obj, VIEWS["dml"], stable_rng("probe-twin", name, c, k), px, px, pool,
                                             habitat=new, pose_rng=stable_rng("probe-pose", name, c, k))[0])
                sur_twins.append(render_view(other, VIEWS["dml"], stable_rng("probe", name, c, k), px, px, pool,
                                             habitat=hab, pose_rng=stable_rng("probe-pose-other", name, c, k))[0])
    out = [to_tensor(imgs), np.asarray(labels), np.asarray(habs)]
    return out + ([to_tensor(obj_twins), to_tensor(sur_twins)] if twins else [])


def to_tensor(imgs, resize=54):
    arr = np.stack([np.asarray(Image.fromarray(im).resize((resize, resize), Image.BILINEAR)) for im in imgs])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _norm(x):
    return (x.float() / 255 - MEAN) / STD


def augment(x, gen, size=48):
    n, _, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (n,), generator=gen)
    ox = torch.randint(0, w - size + 1, (n,), generator=gen)
    ar = torch.arange(size)
    rows = (oy[:, None] + ar)[:, None, :, None].expand(n, 3, size, w)
    cols = (ox[:, None] + ar)[:, None, None, :].expand(n, 3, size, size)
    out = x.gather(2, rows).gather(3, cols)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return _norm(out)


@torch.no_grad()
def embed(model, x, pooled=False, bs=500):
    model.eval()
    o = (x.shape[2] - 48) // 2
    outs = []
    for i in range(0, len(x), bs):
        xb = _norm(x[i:i + bs, :, o:o + 48, o:o + 48])
        f = model.pool(model.backbone(xb)).flatten(1) if pooled else model(xb)
        outs.append(F.normalize(f, dim=1))
    model.train()
    return torch.cat(outs)


def evaluate(model, test):
    x, labels, habs, obj_t, sur_t = test
    lab, hab = torch.as_tensor(labels), torch.as_tensor(habs)
    out = {}
    for tag, pooled in (("emb", False), ("pool", True)):
        e = embed(model, x, pooled)
        s = e @ e.T
        s.fill_diagonal_(-2)
        nn_ = s.argmax(1)
        out[f"r1_{tag}"] = round(100 * float((lab[nn_] == lab).float().mean()), 1)
        out[f"same_habitat_{tag}"] = round(100 * float((hab[nn_] == hab).float().mean()), 1)
        gallery = torch.cat([embed(model, obj_t, pooled), embed(model, sur_t, pooled)])
        g = (e @ gallery.T).argmax(1)
        ar = torch.arange(len(e))
        out[f"object_twin_{tag}"] = round(100 * float((g == ar).float().mean()), 1)
        out[f"surroundings_twin_{tag}"] = round(100 * float((g == ar + len(e)).float().mean()), 1)
    return out


def new_model(weights=None):
    torch.manual_seed(0)
    return build_model("convnet4", embedding_size=128, normalize=True, pooling="avg", head="linear",
                       pretrained=weights)


def train_spreading(model, x, epochs, lr, log):
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 63, 64):
            idx = perm[i:i + 64]
            e1, e2 = model(torch.cat([augment(x[idx], gen), augment(x[idx], gen)])).chunk(2)
            loss = spreading_loss(e1, e2, 0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        log(ep)


def train_labelled(model, x, labels, epochs, log, lr=0.01):
    """Normalised softmax over the training classes (scale 16): the labelled upper bound of the probe."""
    gen = torch.Generator().manual_seed(0)
    classes, y = torch.unique(torch.as_tensor(labels), return_inverse=True)
    proxies = torch.nn.Parameter(torch.randn(len(classes), 128) * 0.1)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": lr * 0.1}, {"params": [proxies], "lr": lr}])
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 63, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(16 * model(augment(x[idx], gen)) @ F.normalize(proxies, dim=1).T, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        log(ep)


def pretrain(x, labels, epochs=12, lr=0.05):
    """The stand-in "ImageNet" pre-training of the table runner, on the in-memory source images."""
    torch.manual_seed(0)
    model = build_model("convnet4", pooling="avg", head="identity", normalize=False)
    classes, y = torch.unique(torch.as_tensor(labels), return_inverse=True)
    clf = torch.nn.Linear(model.feature_dim, len(classes))
    params = list(model.parameters()) + list(clf.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(x) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 63, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(clf(model(augment(x[idx], gen))), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.backbone.state_dict()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="cub200", choices=["cub200", "cars196", "sop"])
    ap.add_argument("--classes", type=int, default=50, help="train classes (and as many test classes)")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--runs", default="random,start,supervised,spreading,scratch_spreading")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--scratch-epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-3, help="Spreading from the start (the official lr)")
    ap.add_argument("--scratch-lr", type=float, default=0.03)
    ap.add_argument("--per-image-habitats", action="store_true", help="every image its own surroundings")
    ap.add_argument("--no-clutter", action="store_true")
    ap.add_argument("--no-light", action="store_true")
    ap.add_argument("--no-texture", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="append the result (JSON line) to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start_time = time.time()
    pool = pool_for(args.dataset, args)
    n = args.classes
    train = render_set(args.dataset, range(1, n + 1), args.per_class, pool)
    test = render_set(args.dataset, range(n + 1, 2 * n + 1), args.per_class, pool, twins=True)
    runs = args.runs.split(",")
    result = {"args": {k: str(v) for k, v in vars(args).items()}}
    weights = None
    if any(r in runs for r in ("start", "supervised", "spreading")):
        src = HabitatPool.for_dataset("imagenet", 0)
        xs, ys, _ = render_set("imagenet", range(1, 101), 30, src)
        weights = Path(f"/tmp/standin_probe_{int(start_time)}.pt")
        torch.save(pretrain(xs, ys), weights)

    def logger(model, key, every):
        def log(ep):
            if (ep + 1) % every == 0:
                rec = {"run": key, "epoch": ep + 1, **evaluate(model, test)}
                result[key] = rec
                print(json.dumps(rec), flush=True)
        return log

    for run in runs:
        model = new_model(None if run in ("random", "scratch_spreading") else weights)
        if run in ("random", "start"):
            result[run] = evaluate(model, test)
            print(json.dumps({"run": run, **result[run]}), flush=True)
        elif run == "supervised":
            train_labelled(model, train[0], train[1], args.epochs, logger(model, run, args.epochs))
        elif run == "spreading":
            train_spreading(model, train[0], args.epochs, args.lr, logger(model, run, max(1, args.epochs // 2)))
        elif run == "scratch_spreading":
            train_spreading(model, train[0], args.scratch_epochs, args.scratch_lr,
                            logger(model, run, max(1, args.scratch_epochs // 3)))
        else:
            raise SystemExit(f"unknown run {run!r}")
    result["wall_time_s"] = round(time.time() - start_time, 1)
    print("RESULT " + json.dumps(result), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
