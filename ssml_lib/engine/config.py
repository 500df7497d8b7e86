"""The training configuration every method shares (optimiser, schedule, precision, checkpoints, devices)."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from ..config import Config
from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """Frozen and type-checked on construction (an unknown key or a wrong type is a ConfigError).

    ``batch_size`` is the *global* batch: under DDP each of W ranks gets ``batch_size / W`` items, so one
    config means the same optimisation on any number of GPUs.

    Optimisers (``optimizer``):
      - ``sgd``: SGD with ``momentum`` and L2 ``weight_decay`` on every parameter (Spreading, ISL).
      - ``adam``: Adam with *coupled* L2 decay on weights and none on biases (InsCLR's ``solver/optimizer.py``).
      - ``adamw``: Adam with *decoupled* decay on every parameter (STML's AdamP without its projection).
      - ``adamp``: clovaai's AdamP(nesterov=True) from the ``adamp`` package (STML); what was built is logged.

    Schedules (``schedule``, all multiplying each group's own lr):
      - ``constant``;
      - ``multistep``: × ``gamma`` at each of ``milestones``, counted in epochs or in global steps
        (``schedule_unit``; InsCLR's WarmupMultiStepLR is per step, Spreading's is per epoch);
      - ``cosine``: ½(1 + cos(π t / T)); per epoch T = ``epochs`` (STML's CosineAnnealingLR stepped per
        epoch); per step T = ``max_steps``.
      ``warmup`` (global steps) multiplies the first steps by (step + 1) / warmup.

    ``log_every`` is also the interval of the host synchronisation that checks the loss for NaN/inf and
    updates the progress bar; checkpoints are only written after such a check.

    ``decode``: ``"cpu"`` (default) decodes and augments training images with PIL in the DataLoader workers.
    ``"gpu"`` (opt-in, ``ssml_lib.data.device_decode``) has the workers only read the JPEG bytes and draw the
    augmentation parameters (the same torch RNG calls as torchvision, so the same crops and flips for a seed);
    each batch is then decoded on the training device (nvJPEG on CUDA, libjpeg on a CPU device), cropped,
    resized (bilinear, antialiased), flipped and normalised there. For the fit it replaces the method's
    ``train_transform``/``test_transform`` (Resize, RandomCrop, CenterCrop, RandomResizedCrop,
    RandomHorizontalFlip, ToTensor, Normalize, CaffeNormalize only) and needs a training set of image files
    (``.paths``) and a method without its own ``collate_fn``; ``ctx.datasets`` (the no-aug view) stay on PIL.
    Departures from the PIL pipeline, whose crop/resize geometry it reproduces in whole pixels: the resize is
    computed in float (PIL rounds to uint8), nvJPEG upsamples chroma and rounds its IDCT differently from
    libjpeg, and a resize-crop-resize chain is resampled once. Measured mean |difference| in the [0, 1] pixel
    range, every preset train and test: 0.0011 on a CPU device (the uint8 rounding alone); on an H100 0.0012
    for grey or 4:4:4 JPEGs and 0.004-0.007 for 4:2:0 ones (chroma upsampling), 224 px outputs (CPU:
    tests/test_device_decode.py; H100: a one-off check on synthetic JPEGs, where 500x375 JPEGs -> 224 px ran
    at about 3,500 images/s from one worker against 170 for PIL).
    """

    epochs: int = 1
    max_steps: Optional[int] = None  # stop after this many global steps (smoke runs; InsCLR counts steps)
    batch_size: int = 64
    optimizer: Literal["sgd", "adam", "adamw", "adamp"] = "sgd"
    lr: float = 0.01
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam family only
    schedule: Literal["constant", "multistep", "cosine"] = "constant"
    schedule_unit: Literal["epoch", "step"] = "epoch"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup: int = 0
    grad_clip: Optional[float] = None  # max total gradient norm; the norm is logged whenever this is set
    amp: Literal["auto", "bf16", "off"] = "auto"  # bf16 autocast on CUDA; ignored on CPU
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile the method's compiled_modules() in place (CUDA only; see benchmarks)
    decode: Literal["cpu", "gpu"] = "cpu"  # where training JPEGs are decoded and augmented (see the docstring)
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = True
    seed: int = 0
    deterministic: bool = False
    checkpoint_every_steps: Optional[int] = None  # besides the checkpoint at every epoch end
    log_every: int = 50
    eval_every: int = 1  # epochs between calls of fit's eval_fn (the last epoch is always evaluated)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.epochs >= 1, "epochs", self.epochs, "use at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", self.max_steps, "use None or >= 1"),
            (self.batch_size >= 1, "batch_size", self.batch_size, "use at least 1"),
            (self.lr > 0, "lr", self.lr, "use a positive learning rate"),
            (self.weight_decay >= 0, "weight_decay", self.weight_decay, "use >= 0"),
            (0 <= self.momentum < 1, "momentum", self.momentum, "use a value in [0, 1)"),
            (all(0 <= b < 1 for b in self.betas), "betas", self.betas, "use two values in [0, 1)"),
            (all(m >= 1 for m in self.milestones) and list(self.milestones) == sorted(set(self.milestones)),
             "milestones", self.milestones, "give strictly increasing positive integers, e.g. [20, 40]"),
            (self.schedule != "multistep" or len(self.milestones) > 0, "milestones", self.milestones,
             "a multistep schedule needs at least one milestone"),
            (0 < self.gamma <= 1, "gamma", self.gamma, "use a factor in (0, 1]"),
            (self.warmup >= 0, "warmup", self.warmup, "use a number of steps >= 0"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip", self.grad_clip, "use None or > 0"),
            (self.num_workers >= 0, "num_workers", self.num_workers, "use >= 0"),
            (self.seed >= 0, "seed", self.seed, "use a non-negative integer"),
            (self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1, "checkpoint_every_steps",
             self.checkpoint_every_steps, "use None or >= 1"),
            (self.log_every >= 1, "log_every", self.log_every, "use >= 1"),
            (self.eval_every >= 1, "eval_every", self.eval_every, "use >= 1"),
            (not (self.schedule == "cosine" and self.schedule_unit == "step" and self.max_steps is None),
             "schedule_unit", self.schedule_unit, "a per-step cosine schedule needs max_steps (its length)"),
        ]
        for ok, key, got, fix in checks:
            if not ok:
                raise ConfigError(f"invalid value for TrainConfig.{key}: {got!r}. Fix: {fix}.")
