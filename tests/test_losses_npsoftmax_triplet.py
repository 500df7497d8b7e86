"""The CIFAR baselines' losses against hand-written loops on tiny inputs: NPSoftmax (memory-bank softmax) and the
instance triplet loss, with and without in-batch hard negative mining (pytorch-metric-learning underneath)."""
import math

import pytest
import torch
import torch.nn.functional as F

from ssml_lib.losses import LossInputError, instance_triplet_loss, npsoftmax_loss


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


def _npsoftmax_loop(f, v, idx, t):
    total = 0.0
    for b in range(f.shape[0]):
        scores = [math.exp(float(f[b] @ v[j]) / t) for j in range(v.shape[0])]
        total += -math.log(scores[int(idx[b])] / sum(scores))
    return total / f.shape[0]


def test_npsoftmax_value_and_gradient_match_a_loop():
    f, v = _unit(4, 5, seed=1).requires_grad_(), _unit(9, 5, seed=2)
    idx = torch.tensor([3, 0, 8, 3])
    loss = npsoftmax_loss(f, v, idx, 0.1)
    assert float(loss.detach()) == pytest.approx(_npsoftmax_loop(f.detach(), v, idx, 0.1), rel=1e-10)
    (g,) = torch.autograd.grad(loss, f)
    # d/df_b of -log softmax: (sum_j p_j v_j - v_{i_b}) / (T B)
    p = torch.softmax(f.detach() @ v.T / 0.1, dim=1)
    expected = (p @ v - v[idx]) / (0.1 * 4)
    assert torch.allclose(g, expected, atol=1e-12)


def test_npsoftmax_sends_no_gradient_into_the_bank_and_refuses_bad_indices():
    f, v = _unit(3, 4).requires_grad_(), _unit(6, 4, seed=3).requires_grad_()
    npsoftmax_loss(f, v, torch.tensor([0, 1, 2])).backward()
    assert v.grad is None and f.grad is not None
    with pytest.raises(LossInputError, match=r"\[0, 6\)"):
        npsoftmax_loss(f, v, torch.tensor([0, 1, 6]))
    with pytest.raises(LossInputError, match="memory must be"):
        npsoftmax_loss(f, _unit(6, 5), torch.tensor([0, 1, 2]))


def _triplet_loop(e1, e2, margin, hard):
    x = F.normalize(torch.cat([e1, e2]), dim=1)
    b = e1.shape[0]
    labels = list(range(b)) * 2
    d = torch.cdist(x, x)
    losses = []
    for a in range(2 * b):
        pos = [p for p in range(2 * b) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(2 * b) if labels[n] != labels[a]]
        if hard:
            losses.append(max(0.0, max(float(d[a, p]) for p in pos) - min(float(d[a, n]) for n in neg) + margin))
        else:
            losses += [max(0.0, float(d[a, p] - d[a, n]) + margin) for p in pos for n in neg]
    nonzero = [v for v in losses if v > 0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0


@pytest.mark.parametrize("mining", ["all", "hard"])
def test_instance_triplet_matches_a_loop(mining):
    e1, e2 = _unit(5, 3, seed=4), _unit(5, 3, seed=5)
    got = float(instance_triplet_loss(e1, e2, 0.5, mining=mining))
    assert got == pytest.approx(_triplet_loop(e1, e2, 0.5, mining == "hard"), rel=1e-6)


def test_hard_mining_changes_the_loss_and_gradient_flows():
    e1, e2 = _unit(6, 4, seed=6).requires_grad_(), _unit(6, 4, seed=7)
    all_, hard = instance_triplet_loss(e1, e2, mining="all"), instance_triplet_loss(e1, e2, mining="hard")
    assert float(hard.detach()) > float(all_.detach())  # the hardest negative gives the largest violation
    hard.backward()
    assert e1.grad is not None and e1.grad.abs().sum() > 0
    with pytest.raises(LossInputError, match="unknown triplet mining"):
        instance_triplet_loss(e1, e2, mining="semihard")


def _nce_loop(f, v, idx, noise, t, z):
    n, k = v.shape[0], noise.shape[1]
    total = 0.0
    for b in range(f.shape[0]):
        p = math.exp(float(f[b] @ v[int(idx[b])]) / t) / z
        term = math.log(p / (p + k / n))
        for j in noise[b]:
            q = math.exp(float(f[b] @ v[int(j)]) / t) / z
            term += math.log(k / n / (q + k / n))
        total -= term
    return total / f.shape[0]


def test_nce_value_and_normaliser_match_loops():
    from ssml_lib.losses import nce_loss, nce_normaliser

    f, v = _unit(3, 4, seed=8).requires_grad_(), _unit(10, 4, seed=9)
    idx, noise = torch.tensor([2, 7, 0]), torch.tensor([[1, 5, 5, 9], [0, 3, 8, 2], [4, 4, 6, 1]])
    z = nce_normaliser(f, v, idx, noise, 0.1)
    rows = torch.cat([idx[:, None], noise], 1)
    expected_z = sum(math.exp(float(f.detach()[b] @ v[int(r)]) / 0.1) for b in range(3) for r in rows[b]) / 15 * 10
    assert z == pytest.approx(expected_z, rel=1e-10)
    loss = nce_loss(f, v, idx, noise, 0.1, z=z)
    assert float(loss.detach()) == pytest.approx(_nce_loop(f.detach(), v, idx, noise, 0.1, z), rel=1e-9)
    loss.backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()
    with pytest.raises(LossInputError, match=r"\[0, 10\)"):
        nce_loss(f, v, idx, noise + 6, 0.1, z=z)
