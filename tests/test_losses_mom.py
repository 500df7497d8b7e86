"""MOM triplet loss on index tuples: reference loop, closed forms, empty input, training, bf16."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssml_lib.errors import SsmlError
from ssml_lib.losses import mom_triplet_loss


def _reference(x, a, p, n, margin, squared):
    total = 0.0
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist()):
        d_pos, d_neg = ((x[i] - x[j]) ** 2).sum(), ((x[i] - x[k]) ** 2).sum()
        if not squared:
            d_pos, d_neg = d_pos.sqrt(), d_neg.sqrt()
        total = total + torch.clamp(margin + d_pos - d_neg, min=0)
    return total / len(a)


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_matches_reference_value_and_gradient(squared, margin):
    x = F.normalize(torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), dim=1)
    x.requires_grad_(True)
    a, p, n = torch.tensor([0, 0, 3, 5, 9, 2]), torch.tensor([1, 2, 4, 6, 8, 3]), torch.tensor([7, 8, 1, 0, 2, 9])
    ours = mom_triplet_loss(x, a, p, n, margin, squared=squared)
    ref = _reference(x, a, p, n, margin, squared)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


def test_closed_form():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    a, p, n = [0], [1], [2]
    assert mom_triplet_loss(x, a, p, n, 0.1).item() == 0.0  # 0.1 + 1 - 4 < 0
    assert mom_triplet_loss(x, a, p, n, 3.5).item() == pytest.approx(0.5)
    assert mom_triplet_loss(x.numpy(), np.array(a), p, n, 3.5).item() == pytest.approx(0.5)  # NumPy in
    assert mom_triplet_loss(x, a, p, n, 1.5, squared=False).item() == pytest.approx(0.5)
    # Swapping positive and negative makes the triplet violated by 3 + margin.
    assert mom_triplet_loss(x, a, n, p, 0.1).item() == pytest.approx(3.1)


def test_no_triplets_gives_zero_with_a_graph():
    x = torch.randn(4, 3, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.long)
    loss = mom_triplet_loss(x, empty, empty, empty)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_loss_falls_within_20_steps():
    torch.manual_seed(0)
    raw = torch.randn(12, 6, requires_grad=True)
    a, p, n = torch.randint(0, 4, (30,)), torch.randint(4, 8, (30,)), torch.randint(8, 12, (30,))
    opt = torch.optim.SGD([raw], lr=0.2)
    losses = []
    for _ in range(20):
        loss = mom_triplet_loss(F.normalize(raw, dim=1), a, p, n, margin=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_autocast_on_cpu_close_to_float32():
    torch.manual_seed(1)
    layer = torch.nn.Linear(10, 8)
    x = torch.randn(12, 10)
    a, p, n = torch.randint(0, 12, (20,)), torch.randint(0, 12, (20,)), torch.randint(0, 12, (20,))
    ref = mom_triplet_loss(F.normalize(layer(x), dim=1), a, p, n, margin=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = F.normalize(layer(x), dim=1)
        loss = mom_triplet_loss(emb, a, p, n, margin=1.0)
    assert emb.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=3e-2)


def test_bad_input_is_refused():
    x = torch.randn(4, 3)
    with pytest.raises(SsmlError, match="equally long"):
        mom_triplet_loss(x, [0, 1], [1, 2], [3])
    with pytest.raises(SsmlError, match="margin"):
        mom_triplet_loss(x, [0], [1], [2], margin=-1.0)
    with pytest.raises(SsmlError, match="integers"):
        mom_triplet_loss(x, torch.tensor([0.0]), [1], [2])
