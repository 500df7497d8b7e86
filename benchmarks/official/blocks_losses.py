"""Loss blocks: forward + backward of the Spreading loss, InsCLR's memory loss and an STML loss step."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from ssml_lib.losses import insclr_contrastive_loss, spreading_loss, stml_loss

from .checkouts import describe
from .common import Context, compare, max_abs_diff, row, unit_rows
from .loading import cuda_on_cpu, load_module
from .previous import old_spreading_official


def _grad_step(loss_fn, *inputs):
    """A callable: fresh leaves, the loss, its backward; returns (loss, grads)."""
    def run():
        leaves = [x.detach().requires_grad_(True) for x in inputs]
        loss = loss_fn(*leaves)
        loss.backward()
        return loss.detach(), [x.grad for x in leaves]
    return run


def _grad_gap(g_a, g_b) -> float:
    return max(max_abs_diff(a, b) / max(float(b.abs().max()), 1e-12) for a, b in zip(g_a, g_b))


def _agreement(outputs: dict, rtol: float = 1e-4, reference=None, float32_rtol: float = 1e-3) -> tuple[bool, str]:
    """Loss and gradients equal to ``rtol``; or, given ``reference`` (ssml's loss in float64 on the same inputs),
    both float32 sides within ``float32_rtol`` of it (large float32 reductions round differently on each side)."""
    (l_o, g_o), (l_t, g_t) = outputs["ours"], outputs["official"]
    dl = abs(float(l_o) - float(l_t))
    dg = _grad_gap(g_o, g_t)
    ok = dl <= rtol * max(1.0, abs(float(l_t))) and dg <= rtol
    text = f"loss {float(l_o):.6g} vs {float(l_t):.6g}; gradients agree to {dg:.1e} (relative to their max)"
    if reference is not None and not ok:
        l_r, g_r = reference
        gaps = {name: (abs(float(l) - float(l_r)) / max(1.0, abs(float(l_r))), _grad_gap(g, g_r))
                for name, (l, g) in (("ssml", (l_o, g_o)), ("official", (l_t, g_t)))}
        ok = all(max(v) <= float32_rtol for v in gaps.values())
        text += "; against ssml in float64: " + ", ".join(f"{k} loss {v[0]:.1e}, gradients {v[1]:.1e}"
                                                          for k, v in gaps.items())
    return ok, text


def spreading(ctx: Context) -> dict:
    folder = ctx.checkouts["spreading"]
    b, d = (8, 16) if ctx.tiny else (64, 128)
    with cuda_on_cpu(ctx.device) as shims:
        mod = load_module(folder / "BatchAverage.py", "_official_spreading_batchaverage")
        crit = mod.BatchCriterion(1, 0.1, b)
    x, _ = unit_rows(2 * b, d, 0, device=ctx.device)
    fns = {"ours": _grad_step(lambda v: spreading_loss(v[:b], v[b:], 0.1), x),
           "official": _grad_step(lambda v: crit(v, None), x),
           "before": _grad_step(lambda v: old_spreading_official(v, 0.1, 1.0), x)}
    stats, outputs = compare(fns, ctx)
    agree, text = _agreement(outputs)
    return row("spreading_loss", stats=stats, sizes={"B": b, "views": 2, "dim": d}, agree=agree, agreement=text,
               official="BatchAverage.py BatchCriterion(negM=1, T=0.1): forward + backward",
               ours="ssml_lib.losses.spreading_loss (official form): forward + backward",
               loaded="imported module", shims=shims, checkout=describe("spreading", folder))


def insclr_memory_loss(ctx: Context) -> dict:
    folder = ctx.checkouts["insclr"]
    b, mem_rows, d = (16, 300, 32) if ctx.tiny else (256, 100_000, 2048)
    mod = load_module(folder / "benchmark/losses/contrastive_loss.py", "_official_insclr_contrastive_loss")
    cfg = SimpleNamespace(LOSS=SimpleNamespace(CONTRASTIVE_LOSS=SimpleNamespace(MARGIN=0.4, POS_MARGIN=0.0)))
    crit = mod.ContrastiveLoss(cfg)
    emb, _ = unit_rows(b, d, 1, device=ctx.device)
    bank, _ = unit_rows(mem_rows, d, 2, device=ctx.device)
    g = torch.Generator().manual_seed(3)
    labels = (torch.arange(b) // 4 + 1) * torch.where(torch.rand(b, generator=g) < 0.1, -1, 1)
    bank_labels = torch.full((mem_rows,), mem_rows + 1)
    hit = torch.randperm(mem_rows, generator=g)[: mem_rows // 50]
    bank_labels[hit] = torch.randint(1, b // 4 + 1, (hit.numel(),), generator=g)
    labels, bank_labels = labels.to(ctx.device), bank_labels.to(ctx.device)
    fns = {"ours": _grad_step(lambda e: insclr_contrastive_loss(e, labels, bank, bank_labels, margin=0.4,
                                                                anchor_mask=labels > 0), emb),
           "official": _grad_step(lambda e: crit(e, labels, bank, bank_labels)[0], emb)}
    stats, outputs = compare(fns, ctx)
    agree, text = _agreement(outputs)
    return row("insclr_memory_loss", stats=stats, sizes={"batch": b, "memory_rows": mem_rows, "dim": d},
               agree=agree, agreement=text,
               official="benchmark/losses/contrastive_loss.py ContrastiveLoss (memory mode, margin 0.4): "
                        "forward + backward",
               ours="ssml_lib.losses.insclr_contrastive_loss(ref_emb=bank, anchor_mask=labels > 0): forward + "
                    "backward", loaded="imported module", shims=[], checkout=describe("insclr", folder))


def stml_step(ctx: Context) -> dict:
    folder = ctx.checkouts["stml"]
    n, d_f, d_g, neighbours = (12, 8, 16, 3) if ctx.tiny else (120, 128, 1024, 5)
    k = neighbours * 2  # the official topk = num_neighbors x view
    mod = load_module(folder / "code/loss.py", "_official_stml_loss")
    crit = mod.STML_loss(sigma=3.0, delta=1.0, view=2, disable_mu=0, topk=k)
    ids = torch.arange(n).repeat(2).to(ctx.device)  # two views of each image
    f, _ = unit_rows(2 * n, d_f, 4, device=ctx.device)
    g, _ = unit_rows(2 * n, d_g, 5, device=ctx.device)
    t, _ = unit_rows(2 * n, d_g, 6, device=ctx.device)
    f, g = f * 3, g * 2  # student embeddings are not normalised
    with cuda_on_cpu(ctx.device) as shims:
        fns = {"ours": _grad_step(lambda a, c: stml_loss(a, c, t, ids, k, 3.0, 1.0)[0], f, g),
               "official": _grad_step(lambda a, c: crit(a, c, t, ids)["loss"], f, g)}
        stats, outputs = compare(fns, ctx)
    # the official loss runs in float32 only (it indexes float32 buffers), so the float64 check is ssml's
    reference = _grad_step(lambda a, c: stml_loss(a, c, t.double(), ids, k, 3.0, 1.0)[0], f.double(), g.double())()
    agree, text = _agreement(outputs, reference=reference)
    return row("stml_step", stats=stats, sizes={"images": n, "views": 2, "f_dim": d_f, "g_dim": d_g, "topk": k},
               agree=agree, agreement=text,
               official="code/loss.py STML_loss(sigma=3, delta=1, view=2, topk=10): forward + backward",
               ours="ssml_lib.losses.stml_loss: forward + backward", loaded="imported module", shims=shims,
               checkout=describe("stml", folder))


__all__ = ["insclr_memory_loss", "spreading", "stml_step"]
