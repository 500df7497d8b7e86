"""STML: targets W, k-reciprocal neighbours, relaxed contrastive loss, KL distillation; loops and closed forms."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssml_lib.errors import SsmlError
from ssml_lib.losses import (reciprocal_neighbours, relaxed_contrastive_loss, stml_contextual_similarity,
                             stml_kl_distillation, stml_loss, stml_pairwise_similarity, stml_targets)


def _reference_targets(teacher, ids, k, sigma):
    """§3.4 steps 1-6 with Python loops over rows (the official code loops too)."""
    t = F.normalize(teacher.double(), dim=1)
    n = t.shape[0]
    w_p = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            w_p[i, j] = math.exp(-float(((t[i] - t[j]) ** 2).sum()) / sigma)
    knn = []
    for i in range(n):
        score = [2.0 if j == i else (1.0 if ids[i] == ids[j] else float(w_p[i, j])) for j in range(n)]
        knn.append(sorted(range(n), key=lambda j: -score[j])[:k])
    recip = [{j for j in knn[i] if i in knn[j]} for i in range(n)]
    w_tilde = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in recip[i]:
            w_tilde[i, j] = len(recip[i] & recip[j]) / len(recip[i])
    n_qe = int(np.around(k / 2))
    w_hat = torch.stack([w_tilde[knn[i][:n_qe]].mean(0) for i in range(n)])
    return (w_p + (w_hat + w_hat.T) / 2) / 2


def _reference_rc(s, w, delta):
    n = s.shape[0]
    dist = [[(s[i] - s[j]).norm() if i != j else torch.zeros((), dtype=s.dtype) for j in range(n)]
            for i in range(n)]
    total = 0.0
    for i in range(n):
        row_mean = sum(dist[i]) / n
        for j in range(n):
            if i != j:
                d = dist[i][j] / row_mean
                total = total + w[i, j] * d ** 2 + (1 - w[i, j]) * torch.clamp(delta - d, min=0) ** 2
    return total / (n * (n - 1))


def _reference_kl(f, g):
    n = f.shape[0]

    def normalised(x):
        d = torch.stack([torch.stack([(x[i] - x[j]).norm() if i != j else torch.zeros((), dtype=x.dtype)
                                      for j in range(n)]) for i in range(n)])
        return d / d.mean(1, keepdim=True)
    p = torch.softmax(-normalised(g.detach()), 1)
    q = torch.softmax(-normalised(f), 1)
    return sum(p[i, j] * (torch.log(p[i, j]) - torch.log(q[i, j])) for i in range(n) for j in range(n)) / n


def _batch(n_inst=6, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n_inst, dim, generator=g, dtype=torch.float64)
    teacher = torch.cat([base, base + 0.4 * torch.randn(n_inst, dim, generator=g, dtype=torch.float64)])
    return teacher, torch.arange(n_inst).repeat(2)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 11])
def test_targets_match_reference_loop(k):
    teacher, ids = _batch(seed=k)
    torch.testing.assert_close(stml_targets(teacher, ids, k, 3.0), _reference_targets(teacher, ids, k, 3.0))


def test_targets_symmetric_in_unit_interval_with_unit_pairwise_diagonal():
    teacher, ids = _batch(n_inst=10, dim=8, seed=3)
    w = stml_targets(teacher, ids, 4, 1.0)
    w_p = stml_pairwise_similarity(teacher, 1.0)
    torch.testing.assert_close(w, w.T)
    assert w.min() >= 0 and w.max() <= 1 + 1e-12
    torch.testing.assert_close(torch.diagonal(w_p), torch.ones(20, dtype=torch.float64))
    assert not w.requires_grad


def test_same_instance_forced_only_in_neighbour_search():
    # Three instances, two orthogonal views each, instances far apart: with k = 2 every kNN list is
    # {self, other view}, so R(i) = {i, partner} and W_C(i, partner) = 1, though W_P(i, partner) = e^{-2/s}.
    sigma = 1.0
    angles = torch.tensor([0.0, 2.1, 4.2])
    view1 = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros(3), torch.zeros(3)], 1)
    view2 = torch.stack([torch.zeros(3), torch.zeros(3), torch.cos(angles), torch.sin(angles)], 1)
    teacher = torch.cat([view1, view2]).double()
    ids = torch.tensor([0, 1, 2, 0, 1, 2])
    w = stml_targets(teacher, ids, 2, sigma)
    w_p = stml_pairwise_similarity(teacher, sigma)
    w_c = stml_contextual_similarity(w_p, ids, 2)
    partner = (torch.arange(6) + 3) % 6
    assert w_p[0, 3].item() == pytest.approx(math.exp(-2.0 / sigma))
    torch.testing.assert_close(w_c[torch.arange(6), partner], torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(w[torch.arange(6), partner], (w_p[torch.arange(6), partner] + 1) / 2)
    assert w[0, 3] < 1  # not forced to 1 in the targets
    others = torch.ones(6, 6, dtype=torch.bool)
    others[torch.arange(6), partner] = False
    others.fill_diagonal_(False)
    torch.testing.assert_close(w[others], w_p[others] / 2)  # W_C is 0 off the reciprocal pairs


def test_reciprocal_neighbours_hand_built():
    pos = torch.tensor([0.0, 1.0, 3.0, 10.0])
    sim = -(pos[:, None] - pos[None, :]).abs()
    knn, mutual = reciprocal_neighbours(sim, 2)
    assert knn.tolist() == [[0, 1], [1, 0], [2, 1], [3, 2]]
    # 2 lists 1 but 1 does not list 2; 3 lists 2 but 2 does not list 3.
    expected = torch.eye(4, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True
    assert torch.equal(mutual, expected)
    knn3, mutual3 = reciprocal_neighbours(sim, 3)
    assert set(knn3[2].tolist()) == {0, 1, 2}
    assert mutual3[1, 2] and mutual3[2, 1] and not mutual3[0, 3]
    with pytest.raises(SsmlError, match="k must"):
        reciprocal_neighbours(sim, 5)


@pytest.mark.parametrize("delta", [1.0, 0.9])
def test_relaxed_contrastive_matches_reference(delta):
    teacher, ids = _batch(n_inst=4, seed=1)
    w = stml_targets(teacher, ids, 3, 3.0)
    s = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    ours = relaxed_contrastive_loss(s, w, delta)
    ref = _reference_rc(s, w, delta)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, s)[0], torch.autograd.grad(ref, s)[0])


def test_relaxed_contrastive_closed_forms():
    # Two points: the normalised distance is always 2, so L = 2 [4 W] / 2 = 4 W whatever the points.
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    assert relaxed_contrastive_loss(two, w, 1.0).item() == pytest.approx(4 * 0.3)
    # Equilateral triangle: every normalised distance is 3/2, beyond delta = 1: L = 2.25 mean W_offdiag.
    tri = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64)
    w3 = torch.tensor([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]], dtype=torch.float64)
    assert relaxed_contrastive_loss(tri, w3, 1.0).item() == pytest.approx(2.25 * 0.4)
    # With delta = 2 the push term is active: (1 - W)(2 - 1.5)^2 more per pair.
    assert relaxed_contrastive_loss(tri, w3, 2.0).item() == pytest.approx(2.25 * 0.4 + 0.25 * 0.6)


def test_kl_distillation_matches_reference_and_only_teaches_f():
    gen = torch.Generator().manual_seed(7)
    f = torch.randn(7, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(7, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = stml_kl_distillation(f, g)
    ref = _reference_kl(f, g)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, f)[0], torch.autograd.grad(ref, f)[0])
    ours = stml_kl_distillation(f, g)
    ours.backward()
    assert g.grad is None
    same = stml_kl_distillation(f, f)
    assert abs(same.item()) < 1e-12
    assert torch.autograd.grad(same, f)[0].abs().max() < 1e-12  # minimum where f matches its teacher


def test_stml_loss_combines_parts():
    teacher, ids = _batch(n_inst=4, seed=2)
    gen = torch.Generator().manual_seed(9)
    f = torch.randn(8, 4, dtype=torch.float64, generator=gen)
    g = torch.randn(8, 6, dtype=torch.float64, generator=gen)
    total, parts = stml_loss(f, g, teacher, ids, k=3, sigma=3.0, delta=1.0)
    w = stml_targets(teacher, ids, 3, 3.0)
    expected = (relaxed_contrastive_loss(f, w) + relaxed_contrastive_loss(g, w)) / 2 + stml_kl_distillation(f, g)
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"rc_f", "rc_g", "rc", "kl"}
    torch.testing.assert_close(parts["rc"] + parts["kl"], total)


def test_loss_falls_within_20_steps():
    torch.manual_seed(0)
    centres = torch.randn(4, 6)
    teacher = torch.cat([centres.repeat_interleave(2, 0)] * 2) + 0.1 * torch.randn(16, 6)
    ids = torch.arange(8).repeat(2)
    f = torch.randn(16, 4, requires_grad=True)
    g = torch.randn(16, 8, requires_grad=True)
    opt = torch.optim.Adam([f, g], lr=0.05)
    losses = []
    for _ in range(20):
        loss, _ = stml_loss(f, g, teacher, ids, k=4, sigma=3.0, delta=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_bf16_autocast_on_cpu_close_to_float32():
    torch.manual_seed(2)
    head_f, head_g = torch.nn.Linear(10, 4), torch.nn.Linear(10, 8)
    x, teacher = torch.randn(12, 10), torch.randn(12, 8)
    ids = torch.arange(6).repeat(2)
    ref, _ = stml_loss(head_f(x), head_g(x), teacher, ids, k=4, sigma=3.0, delta=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        f, g = head_f(x), head_g(x)
        loss, _ = stml_loss(f, g, teacher, ids, k=4, sigma=3.0, delta=1.0)
    assert f.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(head_f.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=5e-2)


def test_bad_input_is_refused():
    with pytest.raises(SsmlError, match="instance_ids"):
        stml_targets(torch.randn(6, 3), torch.arange(5), 2, 1.0)
    with pytest.raises(SsmlError, match="k must"):
        stml_targets(torch.randn(6, 3), torch.arange(6), 0, 1.0)
    with pytest.raises(SsmlError, match="sigma"):
        stml_targets(torch.randn(6, 3), torch.arange(6), 2, -1.0)
    with pytest.raises(SsmlError, match="weights"):
        relaxed_contrastive_loss(torch.randn(6, 3), torch.rand(5, 5))
    with pytest.raises(SsmlError, match="rows"):
        stml_kl_distillation(torch.randn(6, 3), torch.randn(5, 3))


def test_teacher_momentum_rescaled_to_the_run_length():
    from ssml_lib.engine import TrainConfig
    from ssml_lib.methods.stml import STMLConfig, effective_momentum

    tcfg = TrainConfig(epochs=10, batch_size=60)
    assert effective_momentum(STMLConfig(), tcfg, 600) == 0.999  # no reference length: the official value
    m = effective_momentum(STMLConfig(teacher_momentum_steps=4320), tcfg, 600)  # 10 epochs x 10 steps
    assert m == pytest.approx(0.999 ** 43.2)
    assert m ** 100 == pytest.approx(0.999 ** 4320)  # the teacher forgets as much over the short run
    assert effective_momentum(STMLConfig(teacher_momentum_steps=4320), TrainConfig(max_steps=4320), 600) == \
        pytest.approx(0.999)
