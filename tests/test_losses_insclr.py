"""InsCLR contrastive loss and in-batch selection: reference loop, hand-built cases, training, bf16."""
import math

import pytest
import torch
import torch.nn.functional as F

from ssml_lib.errors import SsmlError
from ssml_lib.losses import insclr_contrastive_loss, insclr_select_labels


def _reference(f, labels, g, g_labels, margin, pos_margin, value, batch):
    """Official rule pair by pair: (1 - s) for kept positives, s (or s - margin) for active negatives."""
    total = 0.0
    for i in range(f.shape[0]):
        for j in range(g.shape[0]):
            if batch and i == j:
                continue
            s = f[i] @ g[j]
            if labels[i] == g_labels[j]:
                if s < 1 - 1e-6 - pos_margin:
                    total = total + (1 - s)
            elif s > margin:
                total = total + (s if value == "official" else s - margin)
    return total / f.shape[0]


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).requires_grad_(True)


@pytest.mark.parametrize("value", ["official", "hinge"])
@pytest.mark.parametrize("margin,pos_margin", [(0.4, 0.0), (0.0, 0.3), (-0.2, 0.0)])
def test_batch_loss_matches_reference(value, margin, pos_margin):
    f = _unit(9, 4, 0)
    labels = torch.tensor([1, 1, 1, 2, 2, 2, -1, -1, 3])
    ours = insclr_contrastive_loss(f, labels, margin=margin, pos_margin=pos_margin, value=value)
    ref = _reference(f, labels, f, labels, margin, pos_margin, value, batch=True)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(ours, f)[0], torch.autograd.grad(ref, f)[0])


def test_memory_loss_matches_reference_and_leaves_bank_without_gradient():
    f, bank = _unit(5, 4, 1), _unit(12, 4, 2)
    labels = torch.tensor([1, 1, 2, 3, 3])
    bank_labels = torch.tensor([1, 2, 2, 3, 99, 99, 99, 99, 99, 99, 99, 1])
    ours = insclr_contrastive_loss(f, labels, bank, bank_labels, margin=0.1)
    ref = _reference(f, labels, bank.detach(), bank_labels, 0.1, 0.0, "official", batch=False)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    ours.backward()
    assert bank.grad is None and f.grad is not None


def test_memory_entry_identical_to_anchor_is_skipped():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    bank = torch.tensor([[1.0, 0.0], [math.cos(1.0), math.sin(1.0)]], dtype=torch.float64)
    loss = insclr_contrastive_loss(f, torch.tensor([1, 2]), bank, torch.tensor([1, 1]), margin=0.9)
    # Row 0: bank 0 is itself (s = 1, skipped), bank 1 is a positive at s = cos 1. Row 1: s = sin 1 < 0.9.
    assert loss.item() == pytest.approx((1 - math.cos(1.0)) / 2, rel=1e-12)


def test_hand_built_case_and_value_variants():
    u = [0.5, math.sqrt(3) / 2]
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], u, [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1, 1, 1, 2])
    s = math.sqrt(3) / 2
    # rows: 0 and 1 are duplicates (s = 1, skipped) with a positive at 0.5; row 2 has two positives at 0.5
    # and one active negative at s; row 3 one active negative at s.
    official = insclr_contrastive_loss(f, labels, margin=0.4)
    hinge = insclr_contrastive_loss(f, labels, margin=0.4, value="hinge")
    assert official.item() == pytest.approx((0.5 + 0.5 + (1.0 + s) + s) / 4, rel=1e-12)
    assert hinge.item() == pytest.approx(official.item() - 2 * 0.4 / 4, rel=1e-12)
    g_official = torch.autograd.grad(official, f)[0]
    g_hinge = torch.autograd.grad(hinge, f)[0]
    torch.testing.assert_close(g_official, g_hinge)
    strict = insclr_contrastive_loss(f, labels, margin=0.4, pos_margin=0.6)  # positives need s < 0.4
    assert strict.item() == pytest.approx(2 * s / 4, rel=1e-12)


def test_anchor_mask_means_over_kept_rows():
    f, bank = _unit(6, 4, 3), _unit(10, 4, 4)
    labels = torch.tensor([1, -1, 2, 2, -2, 3])
    bank_labels = torch.tensor([1, 1, 2, 3, 3, 7, 7, 7, 7, 7])
    keep = labels > 0
    ours = insclr_contrastive_loss(f, labels, bank, bank_labels, anchor_mask=keep)
    ref = _reference(f[keep], labels[keep], bank.detach(), bank_labels, 0.4, 0.0, "official", batch=False)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_select_labels_rejects_weak_neighbours():
    def at(deg):
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]
    # Two tuples (anchor + 3 neighbours); cosines to the anchor: 0.94, 0.5, 0.17 | 0.98, 0.64, -0.5.
    noaug = torch.tensor([at(0), at(20), at(60), at(80), at(90), at(100), at(140), at(210)])
    labels = torch.tensor([1, 1, 1, 1, 2, 2, 2, 2])
    anchors = torch.tensor([0, 0, 0, 0, 4, 4, 4, 4])
    out = insclr_select_labels(noaug, labels, anchors, threshold=0.6)
    assert out.tolist() == [1, 1, -1, -1, 2, 2, 2, -2]
    assert labels.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]  # input untouched
    # The two rejected neighbours of anchor 1 share -1: positives of each other, negatives of the anchor.
    assert out[2] == out[3] != out[0]
    assert insclr_select_labels(noaug, labels, anchors, threshold=-1.0).tolist() == labels.tolist()


def test_loss_falls_within_20_steps():
    torch.manual_seed(0)
    raw = torch.randn(16, 8, requires_grad=True)
    labels = torch.arange(4).repeat_interleave(4) + 1
    opt = torch.optim.SGD([raw], lr=0.5)
    losses = []
    for _ in range(20):
        loss = insclr_contrastive_loss(F.normalize(raw, dim=1), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bf16_autocast_on_cpu_close_to_float32():
    torch.manual_seed(1)
    layer = torch.nn.Linear(12, 8)
    x = torch.randn(12, 12)
    labels = torch.arange(3).repeat_interleave(4)
    ref = insclr_contrastive_loss(F.normalize(layer(x), dim=1), labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = F.normalize(layer(x), dim=1)
        loss = insclr_contrastive_loss(emb, labels)
    assert emb.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()
    assert loss.item() == pytest.approx(ref.item(), rel=5e-2)


def test_bad_input_is_refused():
    f = torch.zeros(4, 3)
    with pytest.raises(SsmlError, match="labels"):
        insclr_contrastive_loss(f, torch.zeros(3, dtype=torch.long))
    with pytest.raises(SsmlError, match="together"):
        insclr_contrastive_loss(f, torch.zeros(4, dtype=torch.long), ref_emb=f)
    with pytest.raises(SsmlError, match="value"):
        insclr_contrastive_loss(f, torch.zeros(4, dtype=torch.long), value="paper")
    with pytest.raises(SsmlError, match="dtype"):
        insclr_contrastive_loss(f, torch.zeros(4))
    with pytest.raises(SsmlError, match="anchor_index"):
        insclr_select_labels(f, torch.zeros(4, dtype=torch.long), torch.zeros(3, dtype=torch.long))
