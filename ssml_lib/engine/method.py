"""The base every method subclasses: a small ``nn.Module`` with a uniform step and optional hooks.

It lives in the engine, which trains it, so the engine never imports ``ssml_lib.methods``; method modules
import it as ``ssml_lib.methods.base.Method``. The engine (``ssml_lib.engine.fit``) owns devices, precision,
DDP, optimisers, schedules, checkpoints and logging; a method only says what one step computes and what
happens around epochs. Order of calls::

    on_fit_start(ctx)                       every fit call, before a checkpoint is restored
    per epoch:  on_epoch_start(epoch, ctx)  not repeated when resuming inside an epoch
                epoch_batches(epoch, ctx)   also called when resuming inside an epoch
                train_dataset(ctx)
                per step: training_step(batch) -> backward -> on_before_optimizer_step(step, ctx)
                          -> optimiser step -> on_after_step(step, ctx)
                on_epoch_end(epoch, ctx) -> dict of extra metrics

The engine calls ``train()`` at every epoch start; a method with parts that must stay in eval mode (an EMA
teacher) overrides ``train(mode)`` to keep them there. A method can change a group's ``base_lr`` through
``ctx.optimizer`` (e.g. a plateau rule in ``on_epoch_end``); the schedule multiplies it and checkpoints keep it.

Exact resumption asks three things of a method: everything it mines or accumulates lives in
``state_dict()`` (registered buffers, or ``get_extra_state`` returning tensors and plain containers so the
checkpoint still loads with ``weights_only=True``); ``epoch_batches`` is a function of that state and the
epoch (seed it with ``ctx.seed`` and ``derive_seed``, not the global RNG); and randomness in a step uses
the global generators, whose states the checkpoint carries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

import torch
from torch import nn

if TYPE_CHECKING:  # for annotations only
    from .config import TrainConfig
    from .context import FitContext


def check_batch_fits(method: str, batch_size: int, n_items: int, what: str = "training images") -> None:
    """Refuse a batch larger than the training set (an epoch would have no full batch)."""
    if batch_size > n_items:
        from ..errors import ConfigError

        raise ConfigError(f"{method}: batch_size={batch_size} but the training set has {n_items} {what}, so an "
                          f"epoch would have no full batch. Fix: -p batch_size {n_items} (or less), or train on "
                          "more data (standin_size default, or real data).")


class Method(nn.Module):
    """Subclass and implement :meth:`training_step`; override the hooks a method needs."""

    name: ClassVar[str] = "method"
    # DDP must search the graph for parameters a step did not use (slower); set True where that happens.
    ddp_find_unused_parameters: ClassVar[bool] = False
    # collate function for the training DataLoader (None: torch's default collate)
    collate_fn: ClassVar[Optional[Callable]] = None

    def training_step(self, batch: Any) -> dict[str, torch.Tensor]:
        """One step's forward pass and loss. Return ``{'loss': scalar tensor, **other tensors to log}``.

        ``batch`` is the collated batch on the training device. Returned extras are averaged over the epoch on
        the device (never ``.item()`` here: that would synchronise the host every step).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement training_step(batch) -> dict")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings of a batch of images (used by :meth:`embed_batch` and evaluation)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(images) -> embeddings")

    # ------------------------------------------------------------------ checks before any write

    @classmethod
    def validate(cls, cfg: Any, train_cfg: "TrainConfig", train_set: Any) -> None:
        """Raise ConfigError for settings that cannot work with ``train_set`` (``fit_method`` calls it for every
        stage before anything is written). The default covers the engine's own batch table (a seeded shuffle of
        the items, cut into full batches): at least one full batch. Methods with their own batches override it."""
        if cls.epoch_batches is Method.epoch_batches and train_cfg.drop_last:
            check_batch_fits(cls.name, train_cfg.batch_size, len(train_set))

    # ------------------------------------------------------------------ hooks (all optional)

    def compiled_modules(self) -> list[nn.Module]:
        """The modules ``TrainConfig.compile`` compiles in place (``nn.Module.compile``: state_dict keys, EMA
        pairing and checkpoints are unchanged): the model, plus e.g. STML's teacher."""
        model = getattr(self, "model", None)
        return [model] if isinstance(model, nn.Module) else []

    def on_fit_start(self, ctx: "FitContext") -> None:
        """Allocate state whose shape depends on the data (memory banks sized by ``len(ctx.train_set)``)."""

    def on_epoch_start(self, epoch: int, ctx: "FitContext") -> None:
        """Per-epoch data step: mining, candidate pools, neighbour graphs. Store results in the state."""

    def epoch_batches(self, epoch: int, ctx: "FitContext") -> Optional[torch.Tensor]:
        """This epoch's batches as a LongTensor (n_batches, global_batch) of indices into
        :meth:`train_dataset`; None for the engine's seeded shuffle."""
        return None

    def train_dataset(self, ctx: "FitContext") -> Any:
        """The dataset the batches index (e.g. one yielding an anchor with its neighbours)."""
        return ctx.train_set

    def on_before_optimizer_step(self, step: int, ctx: "FitContext") -> None:
        """After backward, before the update (STML's teacher EMA reads the pre-update weights here)."""

    def on_after_step(self, step: int, ctx: "FitContext") -> None:
        """After the optimiser step (EMA teachers that track updated weights, bank updates)."""

    def on_epoch_end(self, epoch: int, ctx: "FitContext") -> dict[str, Any]:
        """Extra metrics for the epoch's log line (e.g. precision of mined positives). Returning
        ``{"stop_training": True}`` ends the fit after this epoch (checkpointed, the stage counts as complete;
        ISL's GAN stop rule uses it)."""
        return {}

    # ------------------------------------------------------------------ optimisation and embedding

    def param_groups(self, cfg: "TrainConfig") -> list[dict]:
        """Parameter groups for the optimiser: dicts with ``params`` ((name, parameter) pairs; names let
        the engine exempt biases from Adam's decay) and optionally ``name``, ``lr`` or ``lr_scale``,
        ``weight_decay``. Default: one group with every trainable parameter."""
        return [{"name": "all", "params": [(n, p) for n, p in self.named_parameters() if p.requires_grad]}]

    def embed_batch(self, batch: Any) -> torch.Tensor:
        """Embeddings of an evaluation batch; the default reads the images from ``(image, label, index)``."""
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(images)
