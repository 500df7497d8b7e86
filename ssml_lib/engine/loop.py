"""``fit``: the one training loop every method runs through (devices, AMP, DDP, checkpoints, logging)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..config import to_dict
from ..data.device_decode import EncodedFiles, deferred_transform, device_collate
from ..errors import ConfigError, NonFiniteLossError
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .context import FitContext, FitResult
from .device import TrainingStep, autocast, resolve_amp, to_device
from .determinism import capture_rng_state, derive_seed, deterministic_mode, restore_rng_state, seed_everything
from .distributed import DistInfo, all_gather_object, all_reduce_sum, barrier, init_distributed
from .logging import JsonlLog, RunRecord, format_record, progress_bar
from .meters import EpochMeter, FiniteGuard
from .method import Method
from .optim import LrSchedule, build_optimizer
from .sampler import BatchTableSampler, SeededItems, check_epoch_batches, default_epoch_batches

EvalFn = Callable[[Method, FitContext], Mapping[str, Any]]


def fit(method: Method, train_set: Any, cfg: TrainConfig, out_dir: str | Path, *, eval_fn: Optional[EvalFn] = None,
        resume: bool = True, datasets: Optional[Mapping[str, Any]] = None, standin: Optional[bool] = None) -> FitResult:
    """Train ``method`` on ``train_set``; resume from ``out_dir/last.pt`` when it exists and ``resume``.

    Writes ``out_dir/last.pt`` (every epoch, and every ``cfg.checkpoint_every_steps``), ``log.jsonl`` (one line
    per epoch) and ``provenance.json``. ``eval_fn(method, ctx) -> dict`` runs every ``cfg.eval_every`` epochs
    and its metrics join the epoch's line. Under torchrun, every rank calls ``fit`` with the same arguments.
    A method ends training early by returning ``{"stop_training": True}`` from ``on_epoch_end`` (any rank's
    request stops every rank): that epoch is logged (``stopped_early``) and checkpointed, the result counts as
    completed, and a resumed fit runs no further epoch.
    Raises NonFiniteLossError (last good checkpoint kept) when the loss becomes NaN or inf.
    """
    if not isinstance(method, Method):
        raise ConfigError(f"fit needs a ssml_lib.methods.base.Method, got {type(method).__name__}. Fix: subclass "
                          "Method and implement training_step(batch) -> dict.")
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"cfg must be a TrainConfig, got {type(cfg).__name__}. Fix: TrainConfig(**params) or "
                          "ssml_lib.config.load_config(TrainConfig, ...).")
    if eval_fn is not None and not callable(eval_fn):
        raise ConfigError("eval_fn must be callable as eval_fn(method, ctx) -> dict, or None.")
    if len(train_set) == 0:
        raise ConfigError("the training set is empty. Fix: check the dataset root and split.")
    info = init_distributed(cfg.device)
    try:
        if cfg.batch_size % info.world_size:
            raise ConfigError(f"batch_size={cfg.batch_size} (global) is not divisible by the {info.world_size} ranks. "
                              f"Fix: use a multiple of {info.world_size}.")
        if (type(method).epoch_batches is Method.epoch_batches  # the default table: check before writing anything
                and type(method).train_dataset is Method.train_dataset):
            default_epoch_batches(len(train_set), cfg.batch_size, cfg.seed, 0, shuffle=False, drop_last=cfg.drop_last)
        with deterministic_mode(cfg.deterministic):
            return _Trainer(method, train_set, cfg, Path(out_dir), info, eval_fn, dict(datasets or {}), standin).run(resume)
    finally:
        if info.created_group:
            dist.destroy_process_group()


class _Trainer:
    def __init__(self, method, train_set, cfg, out_dir, info: DistInfo, eval_fn, datasets, standin):
        self.method, self.cfg, self.out_dir, self.info, self.eval_fn = method, cfg, out_dir, info, eval_fn
        self.train_set, self.standin, self.device = train_set, standin, info.device
        self.ckpt_path = out_dir / "last.pt"
        self.ctx = FitContext(cfg=cfg, method=method, device=self.device, out_dir=out_dir, train_set=train_set,
                              datasets=datasets, rank=info.rank, world_size=info.world_size,
                              amp_dtype=resolve_amp(cfg, self.device))
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.train_time = self.epoch_time = 0.0
        self.history: list[dict] = []
        self.meter = EpochMeter(self.device)
        self.guard = FiniteGuard(self.device)
        self.last_saved_step: Optional[int] = None
        self.stopped = False  # the method asked to end training (on_epoch_end's "stop_training")

    # ------------------------------------------------------------------ set-up and resumption

    def run(self, resume: bool) -> FitResult:
        cfg, method = self.cfg, self.method
        resuming = resume and self.ckpt_path.exists()
        saved_transforms = self._defer_decoding()  # may refuse the data or method: before anything is written
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if not resuming:
            seed_everything(cfg.seed + self.info.rank)
        self._to_device()
        method.on_fit_start(self.ctx)
        self._to_device()  # state allocated by on_fit_start
        self._compile()
        self.optimizer, opt_desc = build_optimizer(method.param_groups(cfg), cfg)
        self.ctx.optimizer, self.schedule = self.optimizer, LrSchedule(cfg)
        resumed_from = self._restore() if resuming else None
        self._write_provenance(opt_desc, resumed_from)
        self.log = JsonlLog(self.out_dir / "log.jsonl", self.history) if self.info.is_main else None
        self.model = TrainingStep(method)
        if self.info.world_size > 1:  # banks stay rank-consistent through explicit gathers, not buffer broadcasts
            self.model = DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None,
                broadcast_buffers=False, find_unused_parameters=method.ddp_find_unused_parameters)
        while self.epoch < cfg.epochs and not self._step_limit_reached() and not self.stopped:
            self._run_epoch()
        self._finish_provenance()
        for attr, tf in saved_transforms.items():  # the method keeps the caller's transforms after fit
            setattr(method, attr, tf)
        return FitResult(history=list(self.history), out_dir=self.out_dir, checkpoint=self.ckpt_path,
                         global_step=self.global_step, resumed_from_step=resumed_from,
                         completed=self.epoch >= cfg.epochs or self._step_limit_reached() or self.stopped)

    def _defer_decoding(self) -> dict:
        """decode='gpu': the training set yields file bytes and the method's transforms become deferred ones
        (ssml_lib.data.device_decode); returns the replaced transforms by attribute name."""
        if self.cfg.decode != "gpu":
            return {}
        if self.method.collate_fn is not None:
            raise ConfigError(f"decode='gpu' collates deferred views itself, but {type(self.method).__name__} has its "
                              "own collate_fn. Fix: use TrainConfig(decode='cpu') for this method.")
        train_set = EncodedFiles(self.train_set)
        saved = {attr: getattr(self.method, attr) for attr in ("train_transform", "test_transform")
                 if getattr(self.method, attr, None) is not None}
        deferred = {attr: deferred_transform(tf) for attr, tf in saved.items()}  # all refusals before any change
        self.ctx.train_set = train_set
        for attr, tf in deferred.items():
            setattr(self.method, attr, tf)
        return saved

    def _to_device(self) -> None:
        self.method.to(self.device)
        if self.device.type == "cuda" and self.cfg.channels_last:
            self.method.to(memory_format=torch.channels_last)

    def _compile(self) -> None:
        if not self.cfg.compile:
            return
        if self.device.type != "cuda":
            self.ctx.log("note: compile=True is for CUDA; this run on the CPU stays eager")
            return
        for module in self.method.compiled_modules():
            module.compile()  # in place: parameters and state_dict keys are unchanged

    def _restore(self) -> int:
        ckpt = load_checkpoint(self.ckpt_path)
        try:
            self.method.load_state_dict(ckpt["method"])
            current = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{self.ckpt_path} does not fit this method ({str(exc).splitlines()[0]}). Fix: use a "
                                  "fresh out_dir for a different method or architecture, or pass resume=False.") from None
        old_cfg, new_cfg = ckpt["config"], to_dict(self.cfg)
        if any(old_cfg.get(k) != new_cfg[k] for k in ("lr", "weight_decay", "momentum", "betas")):
            for group, hyper in zip(self.optimizer.param_groups, current):
                group.update(hyper)  # a changed config wins (e.g. a lower lr after a NaN stop)
        p = ckpt["progress"]
        self.epoch, self.step_in_epoch, self.global_step = p["epoch"], p["step_in_epoch"], p["global_step"]
        self.train_time, self.epoch_time = p["train_time_s"], p["epoch_time_s"]
        self.stopped = bool(p.get("stopped", False))
        if ckpt["metrics"] is not None:
            self.meter = EpochMeter(self.device, ckpt["metrics"]["sums"], ckpt["metrics"]["count"])
        self.history = list(ckpt["history"])
        if not self._step_limit_reached():  # continuing past an earlier max_steps: its partial line goes
            self.history = [r for r in self.history if not r.get("partial")]
        rng = ckpt["rng"]
        if len(rng) != self.info.world_size:
            self.ctx.log(f"warning: checkpoint has {len(rng)} ranks' RNG states, this run {self.info.world_size}; "
                         "resumption is not bit-exact.")
        restore_rng_state(rng[min(self.info.rank, len(rng) - 1)])
        changed = {k: (v, old_cfg.get(k)) for k, v in new_cfg.items() if old_cfg.get(k) != v}
        if changed:
            self.ctx.log(f"warning: TrainConfig differs from the checkpoint's (new, old): {changed}")
        self.last_saved_step = self.global_step
        self.ctx.log(f"resumed from {self.ckpt_path} at epoch {self.epoch}, global step {self.global_step}")
        return self.global_step

    def _write_provenance(self, opt_desc: str, resumed_from: Optional[int]) -> None:
        if self.info.is_main:
            self.run_record = RunRecord(self.out_dir, self.cfg, self.method, self.train_set, self.standin,
                                        self.info.world_size, opt_desc, self.device, self.ctx.amp_dtype, resumed_from)
            self.run_record.announce(lambda message: self.ctx.log(message, detail=True))

    def _finish_provenance(self) -> None:
        if self.info.is_main:
            self.run_record.finish(self.train_time, self.global_step)

    # ------------------------------------------------------------------ training

    def _step_limit_reached(self) -> bool:
        return self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps

    def _epoch_table(self, dataset) -> torch.Tensor:
        table = self.method.epoch_batches(self.epoch, self.ctx)
        if table is None:
            return default_epoch_batches(len(dataset), self.cfg.batch_size, self.cfg.seed, self.epoch,
                                         shuffle=self.cfg.shuffle, drop_last=self.cfg.drop_last)
        return check_epoch_batches(table, len(dataset), self.info.world_size, f"{type(self.method).__name__}.epoch_batches")

    def _run_epoch(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        ctx.epoch = self.epoch
        if self.step_in_epoch == 0 and self.meter.count == 0:
            self.method.on_epoch_start(self.epoch, ctx)
        dataset = self.method.train_dataset(ctx)
        table = self._epoch_table(dataset)
        ctx.steps_in_epoch, self.global_batch = table.shape[0], table.shape[1]
        self.method.train()  # an eval_fn or hook of the previous epoch may have left eval mode on
        sampler = BatchTableSampler(table, self.step_in_epoch, self.info.rank, self.info.world_size)
        # item RNG from (seed, epoch, position): independent of workers, of ranks' loading order and of resumption
        dataset = SeededItems(dataset, cfg.seed, self.epoch)
        # a private generator: creating the loader must not draw from the global RNG (resume would shift it)
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, self.epoch, self.step_in_epoch, self.info.rank))
        collate = device_collate if cfg.decode == "gpu" else self.method.collate_fn
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, generator=gen,
                            collate_fn=collate, pin_memory=self.device.type == "cuda")
        bar = progress_bar(table.shape[0], self.step_in_epoch, f"epoch {self.epoch}", self.info.is_main)
        t0 = time.perf_counter()
        for batch in loader:
            self._train_step(batch)
            bar.update(1)
            if self.global_step % cfg.log_every == 0:
                self._check_finite()
                bar.set_postfix(loss=f"{(self.meter.sums['loss'] / self.meter.count).item():.4f}")
            if self._step_limit_reached():
                break  # the epoch-end save follows
            if (cfg.checkpoint_every_steps and self.global_step % cfg.checkpoint_every_steps == 0
                    and self.step_in_epoch < table.shape[0]):
                self._save(time.perf_counter() - t0)
        bar.close()
        self.epoch_time += time.perf_counter() - t0
        self._end_epoch(partial=self.step_in_epoch < table.shape[0])

    def _train_step(self, batch: Any) -> None:
        step, ctx, opt = self.global_step, self.ctx, self.optimizer
        ctx.step, ctx.step_in_epoch = step, self.step_in_epoch
        self.schedule.apply(opt, self.epoch, step)
        batch = to_device(batch, self.device, self.cfg.channels_last)
        with autocast(self.device, ctx.amp_dtype):
            out = self.model(batch)
        loss = out.get("loss") if isinstance(out, Mapping) else None
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ConfigError(f"{type(self.method).__name__}.training_step must return a dict with 'loss' a scalar "
                              f"tensor, got {type(out).__name__} with loss={type(loss).__name__}.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logged = dict(out)
        if self.cfg.grad_clip is not None:
            params = [p for g in opt.param_groups for p in g["params"]]
            logged["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.method.on_before_optimizer_step(step, ctx)
        opt.step()
        self.guard.update(loss, step)
        self.meter.add(logged)
        self.global_step += 1
        self.step_in_epoch += 1
        self.method.on_after_step(step, ctx)
        ctx.step, ctx.step_in_epoch = self.global_step, self.step_in_epoch

    def _check_finite(self) -> None:
        bad = self.guard.first_bad_step()
        if bad is None:
            return
        kept = (f"{self.ckpt_path} still holds the last good state (global step {self.last_saved_step})"
                if self.last_saved_step is not None else "no checkpoint had been written yet")
        raise NonFiniteLossError(
            f"the training loss became NaN or inf at global step {bad} (epoch {self.epoch}); training stopped and "
            f"{kept}. Fix: lower lr (now {self.cfg.lr}), set grad_clip (e.g. 1.0), or use amp='off'; check the "
            "inputs and the method's loss; then call fit again with the changed TrainConfig and resume=True, "
            "which restarts from that checkpoint.")

    def _end_epoch(self, partial: bool) -> None:
        self._check_finite()
        e, groups = self.epoch, self.optimizer.param_groups
        record: dict[str, Any] = {"epoch": e, "step": self.global_step, "lr": groups[0]["lr"]}
        if len(groups) > 1:
            record["lr_groups"] = {g.get("name", str(i)): g["lr"] for i, g in enumerate(groups)}
        record.update(self.meter.means())
        if partial:
            record["partial"] = True
        extra = dict(self.method.on_epoch_end(e, self.ctx) or {})
        self.stopped = self._any_rank(bool(extra.pop("stop_training", False)))
        record.update(_plain_metrics(extra))
        if self.stopped:
            record["stopped_early"] = True
        last = partial or e == self.cfg.epochs - 1 or self.stopped
        if self.eval_fn is not None and (last or (e + 1) % self.cfg.eval_every == 0):
            was_training = self.method.training
            record.update(_plain_metrics(self.eval_fn(self.method, self.ctx) or {}))
            self.method.train(was_training)
        self.train_time += self.epoch_time
        items = self.meter.count * self.global_batch
        record.update(wall_s=self.epoch_time, images_per_s=items / max(self.epoch_time, 1e-9),
                      train_time_s=self.train_time)
        self.history.append(record)
        self.epoch_time = 0.0  # now counted in train_time
        if not partial:
            self.epoch, self.step_in_epoch = e + 1, 0
            self.meter = EpochMeter(self.device)
        self._save(0.0)
        if self.log is not None:
            self.log.append(record)
            self.ctx.log(format_record(record), detail=True)

    def _any_rank(self, flag: bool) -> bool:
        """True on every rank when any rank's flag is (ranks must agree on when training ends)."""
        if self.info.world_size == 1:
            return flag
        return bool(all_reduce_sum(torch.tensor(float(flag), device=self.device)).item() > 0)

    def _save(self, epoch_time_so_far: float) -> None:
        self._check_finite()  # never write state that followed a NaN
        rng = all_gather_object(capture_rng_state())
        if self.info.is_main:
            save_checkpoint({
                "method": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(),
                "sampler": {"epoch": self.epoch, "batches_done": self.step_in_epoch},
                "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                             "global_step": self.global_step, "train_time_s": self.train_time,
                             "epoch_time_s": self.epoch_time + epoch_time_so_far, "stopped": self.stopped},
                "metrics": self.meter.state() if self.meter.count else None,
                "rng": rng,
                "history": self.history,
                "config": to_dict(self.cfg),
            }, self.ckpt_path)
        self.last_saved_step = self.global_step
        barrier()


def _plain_metrics(metrics: Mapping[str, Any]) -> dict:
    """Tensors and NumPy scalars from hooks become Python numbers (one sync per epoch is fine)."""
    out = {}
    for k, v in metrics.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        out[str(k)] = v
    return out
