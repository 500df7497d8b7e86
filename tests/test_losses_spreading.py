"""Spreading loss: naive float64 reference loops (value and gradient), closed forms, variants, training, bf16."""
import math

import pytest
import torch
import torch.nn.functional as F

from benchmarks.official.previous import old_spreading_official
from ssml_lib.errors import SsmlError
from ssml_lib.losses import spreading_loss


def _unit(b, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1).requires_grad_(True)


def _reference_official(emb, emb_aug, t, m):
    """BatchCriterion written pair by pair: column side detached, 2B - 1 terms, positive not a negative."""
    x = torch.cat([emb, emb_aug])
    n, b = x.shape[0], x.shape[0] // 2
    total = 0.0
    for i in range(n):
        p = (i + b) % n
        a = {j: torch.exp(x[i] @ x[j].detach() / t) for j in range(n) if j != i}
        z = m * (sum(a.values()) - a[p]) + a[p]
        total = total + torch.log(a[p] / z)
        for j in a:
            if j != p:
                total = total + m * torch.log(1 - a[j] / z)
    return -total / n


def _reference_paper(f, f_aug, t, m):
    """Seed 002 Eqs. 3, 4 and 7, summed, then divided by B."""
    b = f.shape[0]
    total = 0.0
    for i in range(b):
        total = total + torch.log(torch.exp(f[i] @ f_aug[i] / t) / sum(torch.exp(f[k] @ f_aug[i] / t)
                                                                        for k in range(b)))
        for j in range(b):
            if j != i:
                p_ij = torch.exp(f[i] @ f[j] / t) / sum(torch.exp(f[k] @ f[j] / t) for k in range(b))
                total = total + m * torch.log(1 - p_ij)
    return -total / b


@pytest.mark.parametrize("variant,reference", [("official", _reference_official), ("paper", _reference_paper)])
@pytest.mark.parametrize("m", [1.0, 2.0])
def test_matches_reference_value_and_gradient(variant, reference, m):
    emb, emb_aug = _unit(5, 7, 0), _unit(5, 7, 1)
    ours = spreading_loss(emb, emb_aug, 0.1, variant=variant, negative_weight=m)
    g_ours = torch.autograd.grad(ours, [emb, emb_aug])
    ref = reference(emb, emb_aug, 0.1, m)
    g_ref = torch.autograd.grad(ref, [emb, emb_aug])
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("m", [1.0, 2.0])
def test_official_closed_form_orthonormal_identical_views(m):
    # B orthonormal instances, view 2 == view 1: the positive logit is 1/T, every other logit is 0.
    b, t = 4, 0.1
    e = torch.eye(b, 6, dtype=torch.float64)
    z = math.exp(1 / t) + m * (2 * b - 2)  # 2B - 1 terms in the denominator, the positive once
    expected = -(math.log(math.exp(1 / t) / z) + m * (2 * b - 2) * math.log(1 - 1 / z))
    assert spreading_loss(e, e, t, negative_weight=m).item() == pytest.approx(expected, rel=1e-12)


def test_paper_closed_form_orthonormal_identical_views():
    b, t = 4, 0.1
    e = torch.eye(b, 6, dtype=torch.float64)
    z = math.exp(1 / t) + (b - 1)  # softmax over the B original-view features only
    expected = -(math.log(math.exp(1 / t) / z) + (b - 1) * math.log(1 - 1 / z))
    assert spreading_loss(e, e, t, variant="paper").item() == pytest.approx(expected, rel=1e-12)


def test_variants_differ_in_value_and_official_detaches_columns():
    emb, emb_aug = _unit(6, 8, 2), _unit(6, 8, 3)
    official = spreading_loss(emb, emb_aug, variant="official")
    paper = spreading_loss(emb, emb_aug, variant="paper")
    assert abs(official.item() - paper.item()) > 1e-3
    # Without the stop-gradient the same value would give another gradient: the detach is in effect.
    g_official = torch.autograd.grad(official, emb)[0]
    x = torch.cat([emb, emb_aug])
    n = x.shape[0]
    logits = x @ x.T / 0.1
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    partner = (torch.arange(n) + n // 2) % n
    log_z = torch.logsumexp(logits, 1)
    log_p = logits[torch.arange(n), partner] - log_z
    neg = torch.ones(n, n, dtype=torch.bool)
    neg[torch.arange(n), torch.arange(n)] = False
    neg[torch.arange(n), partner] = False
    undetached = -(log_p.sum() + torch.log1p(-torch.exp(logits - log_z[:, None]))[neg].sum()) / n
    torch.testing.assert_close(undetached, official)
    g_undetached = torch.autograd.grad(undetached, emb)[0]
    assert (g_official - g_undetached).abs().max() > 1e-3


def test_positive_pairs_lower_the_loss():
    e = _unit(6, 16, 4).detach()
    aligned = spreading_loss(e, e)
    shuffled = spreading_loss(e, e.roll(1, dims=0))
    assert aligned < shuffled


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_loss_falls_within_20_steps(variant):
    torch.manual_seed(0)
    raw = torch.randn(16, 8, requires_grad=True)
    jitter = 0.3 * torch.randn(16, 8)
    opt = torch.optim.Adam([raw], lr=0.05)
    losses = []
    for _ in range(20):
        loss = spreading_loss(F.normalize(raw, dim=1), F.normalize(raw + jitter, dim=1), variant=variant)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_bf16_autocast_on_cpu_close_to_float32():
    torch.manual_seed(0)
    layer = torch.nn.Linear(12, 8)
    x1, x2 = torch.randn(10, 12), torch.randn(10, 12)
    ref = spreading_loss(F.normalize(layer(x1), dim=1), F.normalize(layer(x2), dim=1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        e1, e2 = F.normalize(layer(x1), dim=1), F.normalize(layer(x2), dim=1)
        assert e1.dtype == torch.bfloat16
        loss = spreading_loss(e1, e2)
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=3e-2)


@pytest.mark.parametrize("kwargs,match", [
    ({"emb_aug": torch.zeros(4, 3)}, "shape"),
    ({"temperature": 0.0}, "temperature"),
    ({"variant": "wrong"}, "variant"),
    ({"negative_weight": -1.0}, "negative_weight"),
    ({"negative_weight": 0.5}, "negative_weight >= 1"),
])
def test_bad_input_is_refused(kwargs, match):
    args = {"emb": torch.zeros(4, 5), "emb_aug": torch.zeros(4, 5)}
    args.update(kwargs)
    with pytest.raises(SsmlError, match=match):
        spreading_loss(**args)
    with pytest.raises(SsmlError, match="2-D"):
        spreading_loss(torch.zeros(4), torch.zeros(4))


def _tied_views(dtype):
    # ties: duplicated instances, a view equal to its original, and an antipodal pair
    emb, emb_aug = _unit(64, 128, 5, torch.float64).detach(), _unit(64, 128, 6, torch.float64).detach()
    emb[3], emb[9] = emb[1], emb[1]
    emb_aug[4] = emb[4]
    emb_aug[7] = -emb[7]
    return emb.to(dtype).requires_grad_(True), emb_aug.to(dtype).requires_grad_(True)


def _both_forms(emb, emb_aug, t, m):
    new = spreading_loss(emb, emb_aug, t, negative_weight=m)
    old = old_spreading_official(torch.cat([emb, emb_aug]), t, m)
    return (new, *torch.autograd.grad(new, [emb, emb_aug])), (old, *torch.autograd.grad(old, [emb, emb_aug]))


@pytest.mark.parametrize("t", [0.1, 0.5, 0.02])
@pytest.mark.parametrize("m", [1.0, 3.0])
def test_fast_official_form_equals_the_log_space_form(t, m):
    """A/B against the previous implementation: equal in float64; in float32 at least as close to float64."""
    new, old = _both_forms(*_tied_views(torch.float64), t, m)
    for a, c in zip(new, old):
        torch.testing.assert_close(a, c, rtol=1e-11, atol=1e-12)
    views32 = _tied_views(torch.float32)
    new32, old32 = _both_forms(*views32, t, m)
    _, truth64 = _both_forms(*(v.detach().double().requires_grad_(True) for v in views32), t, m)
    for a, c, truth in zip(new32, old32, truth64):
        err_new, err_old = (a.double() - truth).abs().max(), (c.double() - truth).abs().max()
        assert err_new <= max(err_old, 1e-6 * truth.abs().max().clamp(min=1)), (err_new, err_old)
