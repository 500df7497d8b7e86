"""ISL affinity + hard-positive loss and GAN proxy losses: reference loops, closed forms, training, bf16."""
import math

import pytest
import torch
import torch.nn.functional as F

from ssml_lib.errors import SsmlError
from ssml_lib.losses import isl_affinity_loss, isl_discriminator_loss, isl_generator_loss


def _reference(x, bank, index, positives, t, lam):
    """LinearCriterion with Python sets, anchor by anchor."""
    n = bank.shape[0]
    total = 0.0
    for i in range(x.shape[0]):
        logits = torch.stack([x[i] @ bank[j] / t for j in range(n)])
        p = torch.exp(logits) / torch.exp(logits).sum()
        own = int(index[i])
        members = {own} | {int(j) for j in positives[i] if j >= 0}
        total = total - torch.log(sum(p[j] for j in members))
        if len(members) > 1:
            hp = max(members - {own}, key=lambda j: float(bank[j] @ bank[own]))
            q_logits = torch.stack([bank[j] @ bank[hp] / t for j in range(n)])
            q = torch.exp(q_logits) / torch.exp(q_logits).sum()
            total = total + lam * sum(p[j] * (torch.log(p[j]) - torch.log(q[j])) for j in range(n))
    return total / x.shape[0]


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


@pytest.mark.parametrize("lam", [0.5, 0.0])
def test_matches_reference_value_and_gradient(lam):
    x = _unit(5, 6, 0).requires_grad_(True)
    bank = _unit(12, 6, 1).requires_grad_(True)
    index = torch.tensor([3, 0, 7, 11, 5])
    # Padding, a repeat and the row's own index must all be ignored.
    positives = torch.tensor([[4, 9, -1], [-1, -1, -1], [2, 2, 7], [10, -1, 1], [5, -1, -1]])
    ours = isl_affinity_loss(x, bank, index, positives, temperature=0.1, hard_positive_weight=lam)
    ref = _reference(x, bank.detach(), index, positives, 0.1, lam)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    g_ours = torch.autograd.grad(ours, x)[0]
    torch.testing.assert_close(g_ours, torch.autograd.grad(ref, x)[0], rtol=1e-9, atol=1e-10)
    ours = isl_affinity_loss(x, bank, index, positives)
    ours.backward()
    assert bank.grad is None  # the bank is updated by momentum, never by gradient


def test_closed_forms_on_orthonormal_bank():
    t, n = 0.1, 6
    bank = torch.eye(n, dtype=torch.float64)
    z = math.exp(1 / t) + n - 1
    # Instance discrimination (round 0): -log p_ii.
    single = isl_affinity_loss(bank[:1], bank, torch.tensor([0]), temperature=t)
    assert single.item() == pytest.approx(-math.log(math.exp(1 / t) / z), rel=1e-12)
    # One positive j: -log (p_ii + p_ij), plus 0.5 KL(p_i || softmax(M M_j / T)) = 0.5 (e^{1/T} - 1) / (T Z).
    pair = isl_affinity_loss(bank[:1], bank, torch.tensor([0]), torch.tensor([[3]]), temperature=t)
    expected = -math.log((math.exp(1 / t) + 1) / z) + 0.5 * (math.exp(1 / t) - 1) / (t * z)
    assert pair.item() == pytest.approx(expected, rel=1e-12)


def test_hard_positive_is_the_most_similar_neighbour_in_memory():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    bank = F.normalize(bank, dim=1)
    x = bank[:1].clone()
    ours = isl_affinity_loss(x, bank, torch.tensor([0]), torch.tensor([[2, 1]]), hard_positive_weight=1.0)
    ref = _reference(x, bank, torch.tensor([0]), [[2, 1]], 0.1, 1.0)
    torch.testing.assert_close(ours, ref)
    # Choosing row 2 (the less similar one) as hp would give another value.
    wrong_q = torch.log_softmax(bank @ bank[2] / 0.1, 0)
    log_p = torch.log_softmax(bank @ x[0] / 0.1, 0)
    affinity = -torch.logsumexp(log_p[[0, 1, 2]], 0)
    wrong = affinity + (log_p.exp() * (log_p - wrong_q)).sum()
    assert abs(ours.item() - wrong.item()) > 1e-3


def test_gan_losses_against_bce_on_probabilities():
    gen = torch.Generator().manual_seed(3)
    real, as_neg, as_pos = (torch.randn(8, 1, generator=gen, dtype=torch.float64) for _ in range(3))
    bce = torch.nn.BCELoss()
    ones, zeros = torch.ones(8, 1, dtype=torch.float64), torch.zeros(8, 1, dtype=torch.float64)
    d_ref = 0.5 * (bce(real.sigmoid(), ones) + 0.5 * bce(as_neg.sigmoid(), zeros) + 0.5 * bce(as_pos.sigmoid(), zeros))
    g_ref = 0.5 * bce(as_neg.sigmoid(), ones) + 0.5 * bce(as_pos.sigmoid(), ones)
    torch.testing.assert_close(isl_discriminator_loss(real, as_neg, as_pos), d_ref)
    torch.testing.assert_close(isl_generator_loss(as_neg.squeeze(1), as_pos), g_ref)
    zero = torch.zeros(4)
    assert isl_discriminator_loss(zero, zero, zero).item() == pytest.approx(math.log(2), rel=1e-6)
    assert isl_generator_loss(zero, zero).item() == pytest.approx(math.log(2), rel=1e-6)


def test_affinity_loss_falls_within_20_steps():
    torch.manual_seed(0)
    bank = F.normalize(torch.randn(40, 8), dim=1)
    index = torch.arange(8)
    positives = torch.tensor([[8 + i, 16 + i] for i in range(8)])
    raw = torch.randn(8, 8, requires_grad=True)
    opt = torch.optim.Adam([raw], lr=0.05)
    losses = []
    for _ in range(20):
        loss = isl_affinity_loss(F.normalize(raw, dim=1), bank, index, positives)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_discriminator_loss_falls_within_20_steps():
    torch.manual_seed(0)
    disc = torch.nn.Linear(6, 1)
    real, fake_a, fake_b = torch.randn(32, 6) + 1.0, torch.randn(32, 6) - 1.0, torch.randn(32, 6) - 1.0
    opt = torch.optim.Adam(disc.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = isl_discriminator_loss(disc(real), disc(fake_a), disc(fake_b))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_autocast_on_cpu_close_to_float32():
    torch.manual_seed(4)
    layer = torch.nn.Linear(10, 8)
    x, bank = torch.randn(6, 10), F.normalize(torch.randn(30, 8), dim=1)
    positives = torch.tensor([[7, -1], [-1, -1], [12, 13], [3, -1], [-1, -1], [0, 29]])
    ref = isl_affinity_loss(F.normalize(layer(x), dim=1), bank, torch.arange(6), positives)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = F.normalize(layer(x), dim=1)
        loss = isl_affinity_loss(emb, bank.bfloat16(), torch.arange(6), positives)
        d_loss = isl_discriminator_loss(layer(x)[:, 0], layer(x)[:, 1], layer(x)[:, 2])
    assert emb.dtype == torch.bfloat16 and loss.dtype == torch.float32 and d_loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=3e-2)


def test_bad_input_is_refused():
    x, bank = torch.randn(4, 3), torch.randn(10, 3)
    with pytest.raises(SsmlError, match="index"):
        isl_affinity_loss(x, bank, torch.arange(3))
    with pytest.raises(SsmlError, match="positive_index"):
        isl_affinity_loss(x, bank, torch.arange(4), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(SsmlError, match="memory"):
        isl_affinity_loss(x, torch.randn(10, 5), torch.arange(4))
    with pytest.raises(SsmlError, match="temperature"):
        isl_affinity_loss(x, bank, torch.arange(4), temperature=0)
    with pytest.raises(SsmlError, match="logits"):
        isl_generator_loss(torch.randn(4, 2), torch.randn(4))


def test_without_hpe_is_hard_positive_weight_zero_and_removes_only_that_term():
    """The ISL paper's "ISL w/o HPE" row: the loss is linear in the weight of the hard-positive term, so weight 0
    leaves exactly the affinity loss, and anchors without mined positives never see that term."""
    x, bank = _unit(4, 6, 2), _unit(10, 6, 3)
    index, positives = torch.tensor([0, 1, 2, 3]), torch.tensor([[5, 6], [-1, -1], [7, -1], [-1, -1]])
    loss = {lam: isl_affinity_loss(x, bank, index, positives, 0.1, lam) for lam in (0.0, 0.5, 1.0)}
    kl = loss[1.0] - loss[0.0]
    assert kl > 0  # the term is there (a KL divergence) and only weight 0 removes it
    torch.testing.assert_close(loss[0.5] - loss[0.0], 0.5 * kl)
    torch.testing.assert_close(loss[0.0], _reference(x, bank, index, positives, 0.1, 0.0))
    alone = torch.full((4, 2), -1)
    torch.testing.assert_close(isl_affinity_loss(x, bank, index, alone, 0.1, 0.5),
                               isl_affinity_loss(x, bank, index, alone, 0.1, 0.0))
