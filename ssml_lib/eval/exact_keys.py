"""Exact keys for the pairs a float32 search cannot order: float64 keys in bulk, canonical keys where needed.

Keys are "smaller is better": negated inner products (metric "ip") or squared distances ("l2sq"). The canonical
key of a pair is its float64 value summed in a fixed pairwise tree, so its bits depend on neither back end,
chunking nor device; it is the reference that orders near-ties. :func:`settle_chains` gives the flagged places
of sorted candidate lists keys that order them within their chain exactly as canonical keys would and round to
the same float32: one float64 product per pair (a blocked matmul against every reference when the references
are few, else a gathered batch of candidate rows per query), canonical keys only where the float64 bound
leaves the order or the float32 rounding open.
"""
from __future__ import annotations

import torch

_U64 = 2.0**-53


def float32_below(x: torch.Tensor) -> torch.Tensor:
    """The largest float32 <= x (x float64), elementwise."""
    f = x.float()
    return torch.where(f.double() > x, torch.nextafter(f, torch.full_like(f, -float("inf"))), f)


def float32_above(x: torch.Tensor) -> torch.Tensor:
    """The smallest float32 >= x (x float64), elementwise."""
    f = x.float()
    return torch.where(f.double() < x, torch.nextafter(f, torch.full_like(f, float("inf"))), f)


def canonical_keys(q, q_rows, r, r_rows, metric, max_bytes) -> torch.Tensor:
    """float64 keys for the pairs (q[q_rows[p]], r[r_rows[p]]), summed in a fixed pairwise tree."""
    d = q.shape[1]
    out = torch.empty(q_rows.numel(), dtype=torch.float64, device=q.device)
    step = max(1, int(max_bytes // (d * 8 * 3)))
    for s in range(0, q_rows.numel(), step):
        t = q[q_rows[s:s + step]].double()
        b = r[r_rows[s:s + step]].double()
        t = t.mul_(b) if metric == "ip" else t.sub_(b).square_()
        del b
        while t.shape[1] > 1:  # elementwise adds only: identical bits for any chunking, back end or device
            if t.shape[1] % 2:
                t = torch.cat([t, torch.zeros_like(t[:, :1])], dim=1)
            half = t.shape[1] // 2
            t = t[:, :half].add_(t[:, half:])
        out[s:s + step] = -t[:, 0] if metric == "ip" else t[:, 0]
    return out


def lexsort_rows(*keys: torch.Tensor) -> torch.Tensor:
    """Per row, the permutation sorting by ``keys[0]``, then ``keys[1]``, ... (stable passes, last key first)."""
    perm = keys[-1].argsort(dim=1, stable=True)
    for key in reversed(keys[:-1]):
        perm = perm.gather(1, key.gather(1, perm).argsort(dim=1, stable=True))
    return perm


def settle_chains(q, r, key, idx, flag, chain, metric, max_bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """``key``/``idx`` (m, w): candidate lists sorted by (float32 key, index), keys as float64; ``flag``: the
    places that need exact keys; ``chain`` (m, w): non-decreasing ids of the near-tie chains. Returns the lists
    with flagged keys settled and every chain re-sorted by (key, index). Rows without a flag are left alone."""
    rows = flag.any(dim=1).nonzero().squeeze(1)
    if not rows.numel():
        return key, idx
    n_ref, d = r.shape
    per_row = max(1, int(flag.sum()) // rows.numel())
    r64 = r.double() if n_ref <= 32 * per_row else None  # few references: one float64 matmul beats gathers
    rn = (r64 if r64 is not None else r.double()).norm(dim=1)
    step = max(1, int(max_bytes // (8 * (n_ref if r64 is not None else 2 * d * key.shape[1]))))
    for s in range(0, rows.numel(), step):
        rr = rows[s:s + step]
        k, i, f = key[rr], idx[rr], flag[rr]
        k = torch.where(f, float64_keys(q[rr], r, i, f, metric, r64), k)
        key[rr], idx[rr] = settle(q[rr], r, rn, k, i, f, chain[rr], metric, max_bytes)
    return key, idx


def pair_bound(qn, rn, metric, d) -> torch.Tensor:
    """Bound on |float64 key - exact| for the float64 and canonical formulas (4x spare for the canonical tree
    and the l2 expansion), for query norms ``qn`` and reference norms ``rn`` (broadcast)."""
    gamma = (d + 4) * _U64 / (1 - (d + 4) * _U64)
    return 4 * gamma * (qn * rn if metric == "ip" else (qn + rn) ** 2)


def settle(qs, r, rn, k, i, f, ch, metric, max_bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of places with float64 keys ``k`` where ``f`` is set: canonical keys wherever the float64 bound
    leaves their order within the chain ``ch``, or their float32 rounding, open; then every row sorted by
    (chain, key, index). Returns the sorted (keys, indices)."""
    e = pair_bound(qs.double().norm(dim=1, keepdim=True), rn[i], metric, qs.shape[1])
    # Without chains one sort by key will do: equal keys are close, so their rows are re-sorted below.
    perm = k.argsort(dim=1) if ch is None else lexsort_rows(ch, k, i)
    sk, se, sf = (t.gather(1, perm) for t in (k, e, f))
    close = sf[:, 1:] & sf[:, :-1] & (sk[:, 1:] - sk[:, :-1] <= 2 * (se[:, 1:] + se[:, :-1]))
    if ch is not None:
        sch = ch.gather(1, perm)
        close &= sch[:, 1:] == sch[:, :-1]
    need = sf & ((sk - se).float() != (sk + se).float())  # float32 value not settled by the bound
    need[:, 1:] |= close
    need[:, :-1] |= close
    nr, nc = need.nonzero(as_tuple=True)
    if nr.numel():
        cols = perm[nr, nc]
        k = k.clone()
        k[nr, cols] = canonical_keys(qs, nr, r, i[nr, cols], metric, max_bytes)
        rows = nr.unique()
        perm[rows] = lexsort_rows(*(t[rows] for t in ((k, i) if ch is None else (ch, k, i))))
    return k.gather(1, perm), i.gather(1, perm)


def float64_keys(qs, r, cols, flag, metric, r64=None) -> torch.Tensor:
    """(m, w) float64 keys of the flagged places (any summation order; others left as NaN)."""
    out = torch.full(cols.shape, float("nan"), dtype=torch.float64, device=qs.device)
    q64 = qs.double()
    if r64 is not None:
        prod = q64 @ r64.T
        vals = prod.gather(1, cols)
        if metric == "l2sq":
            vals = vals.mul_(-2).add_((r64 * r64).sum(dim=1)[cols]).add_((q64 * q64).sum(dim=1, keepdim=True))
        else:
            vals = vals.neg_()
        return torch.where(flag, vals, out)
    # the flagged places of each row moved to the front (padding repeats a real place, then is ignored)
    width = int(flag.sum(dim=1).max())
    place = torch.sort((~flag).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    refs = cols.gather(1, place)
    vals = torch.empty(refs.shape, dtype=torch.float64, device=qs.device)
    group = max(1, 2**19 // max(1, width * qs.shape[1]))  # rows per pass: their candidates stay in cache
    for s in range(0, refs.shape[0], group):
        rows_r = r.index_select(0, refs[s:s + group].reshape(-1)).view(-1, width, r.shape[1]).double()
        if metric == "ip":
            vals[s:s + group] = torch.bmm(rows_r, q64[s:s + group, :, None]).squeeze(2).neg_()
        else:
            vals[s:s + group] = rows_r.sub_(q64[s:s + group, None, :]).square_().sum(dim=2)
    keep = flag.gather(1, place)
    return out.scatter_(1, place, torch.where(keep, vals, float("nan")))

__all__ = ["canonical_keys", "float32_above", "float32_below", "float64_keys", "lexsort_rows", "pair_bound", "settle",
           "settle_chains"]
