"""The Spreading loss's negative selection (the Spreading paper's Table 8: Hard / Easy): ``negatives="all"`` is the
loss as it was, bit for bit; ``hard_half`` / ``easy_half`` match a pair-by-pair float64 loop (value and gradient)
that keeps each anchor's most / least similar half of its 2B - 2 negatives; the method passes the switch on."""
import pytest
import torch
import torch.nn.functional as F

from ssml_lib.errors import ConfigError, SsmlError
from ssml_lib.losses import spreading_loss
from ssml_lib.losses.spreading import _kept_half


def _unit(b, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1).requires_grad_(True)


def _reference_selected(emb, emb_aug, t, m, keep_most_similar):
    """The official BatchCriterion pair by pair (column side detached), each anchor i's negatives cut to the
    B - 1 of its 2B - 2 candidates (both views of the other instances) of largest / smallest x_i . x_j."""
    x = torch.cat([emb, emb_aug])
    n, b, sim = x.shape[0], x.shape[0] // 2, x.detach()
    total = 0.0
    for i in range(n):
        p = (i + b) % n
        candidates = sorted((j for j in range(n) if j not in (i, p)), key=lambda j: float(sim[i] @ sim[j]),
                            reverse=keep_most_similar)
        kept = candidates[:b - 1]
        a = {j: torch.exp(x[i] @ x[j].detach() / t) for j in [p, *kept]}
        z = m * sum(a[j] for j in kept) + a[p]
        total = total + torch.log(a[p] / z)
        for j in kept:
            total = total + m * torch.log(1 - a[j] / z)
    return -total / n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_is_the_loss_as_it_was_bit_for_bit(dtype):
    emb, emb_aug = _unit(6, 5, 0, dtype), _unit(6, 5, 1, dtype)
    before = spreading_loss(emb, emb_aug, 0.1, negative_weight=2.0)
    g_before = torch.autograd.grad(before, [emb, emb_aug])
    after = spreading_loss(emb, emb_aug, 0.1, negative_weight=2.0, negatives="all")
    g_after = torch.autograd.grad(after, [emb, emb_aug])
    assert torch.equal(before, after) and all(torch.equal(a, b) for a, b in zip(g_before, g_after))


@pytest.mark.parametrize("negatives,most", [("hard_half", True), ("easy_half", False)])
@pytest.mark.parametrize("b,m,t", [(5, 1.0, 0.1), (4, 2.0, 0.5), (3, 1.0, 0.02)])
def test_hard_and_easy_match_the_reference_loop(negatives, most, b, m, t):
    emb, emb_aug = _unit(b, 7, 2), _unit(b, 7, 3)
    ours = spreading_loss(emb, emb_aug, t, negative_weight=m, negatives=negatives)
    ref = _reference_selected(emb, emb_aug, t, m, most)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    for a, r in zip(torch.autograd.grad(ours, [emb, emb_aug]), torch.autograd.grad(ref, [emb, emb_aug])):
        torch.testing.assert_close(a, r, rtol=1e-8, atol=1e-7)  # T = 0.02: gradients of a few units


def test_each_row_keeps_half_its_negatives_never_itself_or_its_positive():
    x = _unit(4, 3, 5).detach()
    n = 8
    rows = torch.arange(n)
    partner = (rows + 4) % n
    logits = x.repeat(2, 1) @ x.repeat(2, 1).T  # both views equal: ties between the two views of an instance
    for hard in (True, False):
        kept = _kept_half(logits, rows, partner, hard)
        assert (kept.sum(1) == 3).all() and not kept[rows, rows].any() and not kept[rows, partner].any()
    y = _unit(8, 3, 6).detach()
    hard, easy = _kept_half(y @ y.T, rows, partner, True), _kept_half(y @ y.T, rows, partner, False)
    assert not (hard & easy).any() and (hard | easy).sum() == n * (n - 2)  # the two halves of the candidates


def test_selection_differs_from_all_and_is_refused_where_undefined():
    emb, emb_aug = _unit(5, 4, 7), _unit(5, 4, 8)
    full = spreading_loss(emb, emb_aug)
    hard, easy = (spreading_loss(emb, emb_aug, negatives=s) for s in ("hard_half", "easy_half"))
    assert easy < min(hard, full) and hard != full  # the easy half's terms are the smallest of each row
    with pytest.raises(SsmlError, match="official variant only"):
        spreading_loss(emb, emb_aug, variant="paper", negatives="hard_half")
    with pytest.raises(SsmlError, match="unknown spreading negatives"):
        spreading_loss(emb, emb_aug, negatives="hard")


def test_the_method_passes_its_switch_to_the_loss(monkeypatch):
    from ssml_lib.methods import spreading as module

    seen = {}
    monkeypatch.setattr(module, "spreading_loss", lambda *a, **k: seen.update(k) or torch.zeros(()))
    method = module.Spreading(torch.nn.Flatten(), module.SpreadingConfig(negatives="easy_half"),
                              train_transform=None, test_transform=None)
    images = torch.randn(3, 2, 2)
    method.training_step(((images, images), None, None))
    assert seen["negatives"] == "easy_half" and module.SpreadingConfig().negatives == "all"
    with pytest.raises(ConfigError, match="spreading_variant='official'"):
        module.SpreadingConfig(negatives="hard_half", spreading_variant="paper")
