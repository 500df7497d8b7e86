"""The training engine: one ``fit`` for every method (AMP, DDP, checkpoints, resumption, logging)."""
from .checkpoint import CheckpointError, load_checkpoint, load_method_weights, save_checkpoint
from .config import TrainConfig
from .context import FitContext, FitResult
from .determinism import capture_rng_state, derive_seed, deterministic_mode, restore_rng_state, seed_everything
from .distributed import all_gather_tensor, all_reduce_sum, gather_with_grad, init_distributed
from .logging import TIMING_KEYS, read_log
from .loop import fit
from .method import Method
from .optim import LrSchedule, build_optimizer
from .sampler import default_epoch_batches

__all__ = [
    "CheckpointError", "FitContext", "FitResult", "LrSchedule", "Method", "TIMING_KEYS", "TrainConfig", "all_gather_tensor",
    "all_reduce_sum", "build_optimizer", "capture_rng_state", "default_epoch_batches", "derive_seed",
    "deterministic_mode", "fit", "gather_with_grad", "init_distributed", "load_checkpoint", "load_method_weights",
    "read_log", "restore_rng_state", "save_checkpoint", "seed_everything",
]
