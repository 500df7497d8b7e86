"""EMA teacher: the formula over the whole state_dict, BN buffers included, pairing by name."""
import pytest
import torch
from torch import nn

from ssml_lib.errors import SsmlError
from ssml_lib.mining import ema_update_


def _net(extra=False):
    layers = [nn.Linear(3, 4), nn.BatchNorm1d(4)]
    if extra:
        layers.append(nn.Linear(4, 2))  # the student's extra head (STML embedding_f)
    return nn.Sequential(*layers)


def test_ema_formula_includes_bn_buffers_and_copies_counters():
    torch.manual_seed(0)
    student, teacher = _net(extra=True), _net()
    student.train()
    student(torch.randn(8, 3))  # moves running stats and num_batches_tracked
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_state = student.state_dict()
    m = 0.9
    ema_update_(teacher, student, m)
    for k, v in teacher.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, m * before[k] + (1 - m) * s_state[k], atol=1e-7), k
        else:
            assert torch.equal(v, s_state[k]), k
    assert not torch.equal(teacher[1].running_mean, before["1.running_mean"])  # BN stats really moved
    assert int(teacher[1].num_batches_tracked) == 1


def test_one_step_lag_when_called_before_the_optimiser_step():
    torch.manual_seed(1)
    student, teacher = _net(), _net()
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    pre_step = student[0].weight.detach().clone()
    t0 = teacher[0].weight.detach().clone()
    student(torch.randn(4, 3)).pow(3).sum().backward()  # (a plain sum through BN has zero gradient)
    ema_update_(teacher, student, 0.5)  # STML order: after backward, before step
    opt.step()
    assert torch.allclose(teacher[0].weight, 0.5 * t0 + 0.5 * pre_step)
    assert not torch.allclose(teacher[0].weight, 0.5 * t0 + 0.5 * student[0].weight)


def test_mismatched_networks_refused():
    with pytest.raises(SsmlError, match="no tensors named"):
        ema_update_(_net(extra=True), _net(), 0.99)
    with pytest.raises(SsmlError, match="momentum"):
        ema_update_(_net(), _net(), 1.5)
