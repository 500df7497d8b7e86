"""``stml_xbm``: STML with a cross-batch memory, the future work the thesis proposes (§6.2, "Memory Bank use").
An extension: neither the thesis nor the STML paper reports a number for it (docs/methods.md).

Everything of :mod:`ssml_lib.methods.stml` (teacher, NN batches, targets W, relaxed contrastive and KL losses,
optimiser) is unchanged; added is a FIFO queue (:class:`~ssml_lib.mining.CrossBatchMemory`) of the last
``memory_size`` rows of the student's ``f`` and ``g`` (both views, with each row's dataset index), and of the
teacher's ``g`` where the memory also gives positives. The step's rows are written after its loss, from step 0;
the memory joins the loss from global step ``memory_use_step`` on:

- ``memory_terms: negatives`` (default): every filled memory row is a negative (target 0) of every batch row,
  except rows of images that are in the current batch (their pairs are the batch's own, where they may be soft
  positives);
- ``memory_terms: negatives+positives``: the targets come from the same contextual similarity computed over
  the batch and the memory's teacher rows together (:func:`~ssml_lib.losses.stml_targets` with a mask of the
  filled slots), so memory rows become soft positives where the teacher's context says so; the batch's own
  targets then use that larger neighbourhood too. Costs an (N + M)^2 graph per step: keep M to thousands.

The memory term is the relaxed contrastive pair term of the batch rows against the memory rows, on the batch's
row-mean distance scale, averaged over the pairs that count (:func:`~ssml_lib.losses.relaxed_contrastive_loss`
with ``ref_emb``); total = STML's loss + ``memory_weight`` x (L_mem(f) + L_mem(g)) / 2; the KL term stays in the
batch. Before ``memory_use_step`` (and with an empty memory) a step is STML's exactly. The queue is method
state (checkpointed with its write position), on the training device, float16 where ``memory_dtype`` says;
under DDP every rank writes the gathered global batch, so the queues agree. No step reads the device.

Logged per epoch, besides STML's: ``pos_precision`` over all mined positive pairs (batch and memory pairs with
W > 0.5), ``batch_pos_precision`` (STML's), ``memory_pos_precision``, ``memory_pos_pairs_per_row``,
``memory_negative_same_class`` (the fraction of memory negatives that share the row's class: false
negatives), ``memory_rows`` (filled slots) and the step's ``rc_memory``. Labels are used for these only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Literal, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..losses import relaxed_contrastive_loss, stml_targets
from ..mining import CrossBatchMemory
from .stml import STML, VIEWS, STMLConfig

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class STMLXBMConfig(STMLConfig):
    memory_size: int = 8192  # memory rows (embeddings: two views per image and step)
    memory_use_step: int = 0  # the memory joins the loss from this global step on; it fills from step 0
    memory_terms: Literal["negatives", "negatives+positives"] = "negatives"
    memory_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    memory_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [(self.memory_size >= 1, "memory_size", "use a positive number of rows, at least one step's "
                                                         "2 x batch_size, e.g. 8192"),
                  (self.memory_use_step >= 0, "memory_use_step", "use a step >= 0 (0: from the first step)"),
                  (0.0 <= self.memory_weight < float("inf"), "memory_weight", "use a finite weight >= 0, e.g. 1")]
        for ok, key, fix in checks:
            if not ok:
                raise ConfigError(f"invalid STML+memory {key}: {getattr(self, key)!r}. Fix: {fix}.")


class STMLXBM(STML):
    name: ClassVar[str] = "stml_xbm"
    Config: ClassVar[type] = STMLXBMConfig

    def __init__(self, model: nn.Module, cfg: STMLXBMConfig, *, train_transform: Callable, test_transform: Callable):
        super().__init__(model, cfg, train_transform=train_transform, test_transform=test_transform)
        dims = {"f": model.embedding_dim, "g": cfg.g_embedding_size}
        if cfg.memory_terms == "negatives+positives":
            dims["t"] = cfg.g_embedding_size
        self.memory = CrossBatchMemory(cfg.memory_size, dims, dtype=_DTYPES[cfg.memory_dtype])
        # memory pairs of the epoch so far: [positives, same-class positives, negatives, same-class negatives]
        self.register_buffer("memory_counts", torch.zeros(4, dtype=torch.float64))
        self._ctx: Optional[Any] = None

    @classmethod
    def validate(cls, cfg: STMLXBMConfig, train_cfg, train_set: Any) -> None:
        super().validate(cfg, train_cfg, train_set)
        rows = VIEWS * train_cfg.batch_size
        if cfg.memory_size < rows:
            raise ConfigError(f"STML+memory memory_size={cfg.memory_size} holds less than one step's {rows} rows "
                              f"(2 views x batch_size {train_cfg.batch_size}). Fix: -p memory_size {4 * rows} "
                              "(a few steps), or more.")

    def on_fit_start(self, ctx) -> None:
        super().on_fit_start(ctx)
        self._ctx = ctx

    def on_epoch_start(self, epoch: int, ctx) -> None:
        super().on_epoch_start(epoch, ctx)
        self.memory_counts.zero_()

    def memory_in_use(self) -> bool:
        """Whether this step's loss has the memory term (the global step is a host-side number: no sync)."""
        return (self._ctx.step if self._ctx is not None else 0) >= self.cfg.memory_use_step

    # ------------------------------------------------------------------ step

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        g, f, t, ids, row_labels = self._views_forward(batch)
        cfg, use = self.cfg, self.memory_in_use()
        with torch.no_grad():
            weights, memory_weights, memory_mask = self._targets(t, ids, use)
            self._count_positives(weights, ids, row_labels)
            if use:
                self._count_memory(memory_weights, memory_mask, row_labels)
        rc_f, rc_g, kl = self._batch_terms(f, g, weights)
        rc = (rc_f + rc_g) / 2
        loss = rc + kl
        rc_memory = torch.zeros((), device=loss.device)
        if use:
            parts = [relaxed_contrastive_loss(x, memory_weights, cfg.delta, ref_emb=self.memory.read(name),
                                              ref_mask=memory_mask) for name, x in (("f", f), ("g", g))]
            rc_memory = (parts[0] + parts[1]) / 2
            loss = loss + cfg.memory_weight * rc_memory
        rows = {"f": f.detach(), "g": g.detach(), **({"t": t} if "t" in self.memory.names else {})}
        self.memory.enqueue(ids, gather=False, **rows)  # already the global batch on every rank
        return {"loss": loss, "rc": rc.detach(), "rc_f": rc_f.detach(), "rc_g": rc_g.detach(), "kl": kl.detach(),
                "rc_memory": rc_memory.detach()}

    @torch.no_grad()
    def _targets(self, t: torch.Tensor, ids: torch.Tensor, use: bool):
        """(batch targets (N, N), memory targets (N, M), memory pairs that count (N, M)); no memory parts when
        the memory is not in use."""
        k, sigma, n = VIEWS * self.cfg.num_neighbors, self.cfg.sigma, t.shape[0]
        if not use:
            return stml_targets(t, ids, k, sigma), None, None
        memory_ids, filled = self.memory.ids, self.memory.valid
        if self.cfg.memory_terms == "negatives":
            in_batch = (memory_ids[None, :] == ids[:, None]).any(0)
            mask = (filled & ~in_batch)[None, :].expand(n, -1)
            return stml_targets(t, ids, k, sigma), torch.zeros(mask.shape, device=t.device), mask
        valid = torch.cat([torch.ones(n, dtype=torch.bool, device=t.device), filled])
        joint = stml_targets(torch.cat([t, self.memory.read("t")]), torch.cat([ids, memory_ids]), k, sigma, valid)
        return joint[:n, :n], joint[:n, n:], filled[None, :].expand(n, -1)

    @torch.no_grad()
    def _count_memory(self, weights: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> None:
        positive = weights > 0.5
        same = labels[:, None] == self._labels[self.memory.ids.clamp(min=0)][None, :]
        parts = [mask & positive, mask & positive & same, mask & ~positive, mask & ~positive & same]
        self.memory_counts += torch.stack([p.sum() for p in parts]).double()

    def on_epoch_end(self, epoch: int, ctx) -> dict[str, Any]:
        out = super().on_epoch_end(epoch, ctx)
        pairs, same, rows = self.pos_counts.tolist()
        m_pos, m_same, m_neg, m_neg_same = self.memory_counts.tolist()
        out.update(batch_pos_precision=out["pos_precision"],
                   pos_precision=(same + m_same) / (pairs + m_pos) if pairs + m_pos else None,
                   memory_pos_precision=m_same / m_pos if m_pos else None,
                   memory_pos_pairs_per_row=m_pos / rows if rows else 0.0,
                   memory_negative_same_class=m_neg_same / m_neg if m_neg else None,
                   memory_rows=int(self.memory.valid.sum()))
        return out
