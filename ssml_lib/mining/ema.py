"""EMA teacher update over the whole state_dict (STML ``loss.py``, ``main.py``).

theta_T <- m * theta_T + (1 - m) * theta_S for every floating tensor of the teacher's state_dict, so BN
running_mean / running_var are averaged too; integer buffers (``num_batches_tracked``) are copied.
Tensors are paired by name (the official code zips both state_dict orders, which works only because the
student's extra ``embedding_f`` keys come last); student keys the teacher lacks are ignored.

One-step lag: STML calls the update after ``loss.backward()`` and *before* ``optimizer.step()``, so the
teacher tracks the student's parameters from before the step. Call :func:`ema_update_` at that point to
reproduce it; calling it after ``optimizer.step()`` gives the lag-free form. m = 0.999 (CUB/Cars), 0.9 (SOP).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import SsmlError


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In-place EMA of ``teacher`` towards ``student`` (DDP / DataParallel wrappers are unwrapped)."""
    if not 0.0 <= float(momentum) <= 1.0:
        raise SsmlError(f"EMA momentum must lie in [0, 1], got {momentum}; STML uses 0.999 or 0.9.")
    t_state = _unwrap(teacher).state_dict(keep_vars=True)
    s_state = _unwrap(student).state_dict(keep_vars=True)
    missing = [k for k in t_state if k not in s_state]
    if missing:
        raise SsmlError(f"the student has no tensors named {missing[:5]} that the teacher has; build the "
                        f"teacher with the student's architecture (same module names).")
    floats_t, floats_s = [], []
    for name, t in t_state.items():
        s = s_state[name]
        if t.shape != s.shape:
            raise SsmlError(f"teacher {name} has shape {tuple(t.shape)}, student {tuple(s.shape)}; the two "
                            f"networks must match.")
        if t.is_floating_point():
            floats_t.append(t.data)
            floats_s.append(s.data.to(t.dtype))
        else:
            t.data.copy_(s.data)
    if floats_t:  # one fused multi-tensor update instead of a Python loop of kernels
        torch._foreach_mul_(floats_t, momentum)
        torch._foreach_add_(floats_t, floats_s, alpha=1.0 - momentum)
