"""In-memory probe: Spreading / supervised on stand-in variants, fast (no JPEG, no PIL per step)."""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, "/work/scratch")
from gen import Regime, make_set  # noqa: E402

from ssml_lib.losses import spreading_loss  # noqa: E402
from ssml_lib.models import build_model  # noqa: E402

torch.set_num_threads(2)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_tensor(imgs, resize=54):
    out = np.stack([np.asarray(Image.fromarray(im).resize((resize, resize), Image.BILINEAR)) for im in imgs])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # uint8 N,3,54,54


def norm(x):
    return (x.float() / 255 - MEAN) / STD


def aug(x, gen, size=48):
    n, _, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (n,), generator=gen)
    ox = torch.randint(0, w - size + 1, (n,), generator=gen)
    ar = torch.arange(size)
    rows = (oy[:, None] + ar)[:, None, :, None].expand(n, 3, size, w)
    cols = (ox[:, None] + ar)[:, None, None, :].expand(n, 3, size, size)
    out = x.gather(2, rows).gather(3, cols)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return norm(out)


def center(x, size=48):
    o = (x.shape[2] - size) // 2
    return norm(x[:, :, o:o + size, o:o + size])


@torch.no_grad()
def embed(model, x, pooled=False, bs=500):
    model.eval()
    outs = []
    for i in range(0, len(x), bs):
        xb = center(x[i:i + bs])
        if pooled:
            f = model.pool(model.backbone(xb))
            outs.append(F.normalize(f.flatten(1), dim=1))
        else:
            outs.append(F.normalize(model(xb), dim=1))
    model.train()
    return torch.cat(outs)


def recall1(emb, labels):
    s = emb @ emb.T
    s.fill_diagonal_(-2)
    nn_ = s.argmax(1)
    return float((labels[nn_] == labels).float().mean()), nn_


def evaluate(model, x, labels, scenes=None):
    lab = torch.as_tensor(labels)
    out = {}
    for name, pooled in (("emb", False), ("pool", True)):
        r, nn_ = recall1(embed(model, x, pooled), lab)
        out[f"r1_{name}"] = round(100 * r, 1)
        if scenes is not None:
            sc = torch.as_tensor(scenes)
            out[f"scene_nn_{name}"] = round(100 * float((sc[nn_] == sc).float().mean()), 1)
    return out


def new_model(seed=0, weights=None, head_init="default"):
    torch.manual_seed(seed)
    m = build_model("convnet4", embedding_size=128, normalize=True, pooling="avg", head="linear",
                    pretrained=weights, head_init=head_init)
    return m


def train_spreading(model, x, epochs, lr, milestones=(), seed=0, log=None, eval_fn=None, batch=64, nn_prob=0.0,
                    wd=5e-4):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), 0.1)
    n = len(x)
    for ep in range(epochs):
        partner = torch.arange(n)
        if nn_prob > 0:
            e = embed(model, x, pooled=True)
            s = e @ e.T
            s.fill_diagonal_(-2)
            nn_ = s.argmax(1)
            swap = torch.rand(n, generator=gen) < nn_prob
            partner = torch.where(swap, nn_, partner)
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            v1, v2 = aug(x[idx], gen), aug(x[partner[idx]], gen)
            emb = model(torch.cat([v1, v2]))
            e1, e2 = emb.chunk(2)
            loss = spreading_loss(e1, e2, 0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss)
        sched.step()
        rec = {"epoch": ep + 1, "loss": round(tot / (n // batch), 4)}
        if eval_fn is not None and ((ep + 1) % max(1, epochs // 4) == 0 or ep == epochs - 1):
            rec.update(eval_fn(model))
        if log is not None:
            log.append(rec)
            print(json.dumps(rec), flush=True)
    return model


def train_supervised(model, x, labels, epochs, lr=0.01, seed=0, batch=64, log=None, eval_fn=None, scale=16.0):
    """Normalised-softmax (proxy) supervised learning on the embedding."""
    gen = torch.Generator().manual_seed(seed)
    lab = torch.as_tensor(labels)
    classes, y = torch.unique(lab, return_inverse=True)
    proxies = torch.nn.Parameter(torch.randn(len(classes), 128) * 0.1)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": lr * 0.1}, {"params": [proxies], "lr": lr}])
    n = len(x)
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            emb = model(aug(x[idx], gen))
            logits = scale * emb @ F.normalize(proxies, dim=1).T
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss)
        rec = {"epoch": ep + 1, "loss": round(tot / (n // batch), 4)}
        if eval_fn is not None and ((ep + 1) % max(1, epochs // 4) == 0 or ep == epochs - 1):
            rec.update(eval_fn(model))
        if log is not None:
            log.append(rec)
            print(json.dumps(rec), flush=True)
    return model


def pretrain_classifier(x, labels, epochs=12, lr=0.05, seed=0, batch=64):
    """Stand-in 'ImageNet' pre-training: CE with a linear classifier on pooled features (as the repo does)."""
    torch.manual_seed(seed)
    model = build_model("convnet4", pooling="avg", head="identity", normalize=False)
    lab = torch.as_tensor(labels)
    classes, y = torch.unique(lab, return_inverse=True)
    clf = torch.nn.Linear(256, len(classes))
    params = list(model.parameters()) + list(clf.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    n = len(x)
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        correct = 0
        for i in range(0, n - batch + 1, batch):
            idx = perm[i:i + batch]
            logits = clf(model(aug(x[idx], gen)))
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == y[idx]).sum())
        print(json.dumps({"pretrain_epoch": ep + 1, "acc": round(correct / n, 3)}), flush=True)
    return model.backbone.state_dict()


def timer():
    t = time.time()
    return lambda: round(time.time() - t, 1)


def twin_sets(regime, ns, classes, per_class, px=64, seed=0):
    """Originals, object twins (same class + pose, new nuisances) and scene twins (same nuisances, other object)."""
    from gen import Generator, family_class
    g = Generator(regime, ns, px, seed)
    cl = list(classes)
    orig, obj_t, scn_t = [], [], []
    for ci, c in enumerate(cl):
        obj = family_class(ns, c, regime)
        other = family_class(ns, cl[(ci + len(cl) // 2) % len(cl)], regime)
        for k in range(per_class):
            orig.append(g.render(obj, (c, k))[0])
            obj_t.append(g.render(obj, (c, k, "twin"), pose_key=(c, k))[0])
            scn_t.append(g.render(other, (c, k), pose_key=(c, k, "other"))[0])
    return to_tensor(orig), to_tensor(obj_t), to_tensor(scn_t)


def twin_probe(model, sets, pooled=False):
    o, ot, st = (embed(model, s, pooled) for s in sets)
    n = len(o)
    gallery = torch.cat([ot, st])
    nn_ = (o @ gallery.T).argmax(1)
    ar = torch.arange(n)
    return {"obj_twin": round(100 * float((nn_ == ar).float().mean()), 1),
            "scene_twin": round(100 * float((nn_ == ar + n).float().mean()), 1)}
