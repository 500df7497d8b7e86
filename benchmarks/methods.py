"""Method overhead: a method's whole training step (forward, loss, backward, optimiser, hooks) against the
backbone-only step (forward + a trivial loss + backward + the same optimiser) on the same images, batch and dtype.

The engine's step order is reproduced (autocast -> training_step -> zero_grad -> backward ->
on_before_optimizer_step -> optimiser step -> on_after_step), on pre-collated random batches already on the
device, so the ratio is the method's own cost, not the input pipeline's. Each method is set up with a stand-in
``FitContext`` (random in-memory items; a random candidate pool file; banks filled with random unit vectors).
Profiles: ``paper`` (the papers' backbones, batches and 224 px; for GPUs) and ``cpu`` (smaller backbones,
batches and resolution so that it finishes on a CPU; the figures then say so).
"""
from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ssml_lib.engine import FitContext, build_optimizer
from ssml_lib.engine.device import autocast, resolve_amp
from ssml_lib.methods import METHODS
from ssml_lib.methods.schedule import StageInfo, method_config, train_config
from ssml_lib.mining import save_candidate_pool
from ssml_lib.models import build_model

from ._measure import sync

TARGETS = {"spreading": 1.15, "stml": 1.4, "insclr": 1.3, "isl": 1.3}  # docs/speed.md

# case -> (method, stage index, model kwargs, batch (items), student images per item, bank items, method cfg)
_PAPER = {
    "spreading": ("spreading", 0, dict(backbone="googlenet", pooling="avg", head="linear", embedding_size=128), 64, 2,
                  0, {}),
    "stml": ("stml", 0, dict(backbone="googlenet", pooling="avgmax", head="linear", embedding_size=512), 120, 2, 0,
             {}),
    # the extension (no target of its own: compare with stml's step); the queue is full, the memory in use
    "stml_xbm": ("stml_xbm", 0, dict(backbone="googlenet", pooling="avgmax", head="linear", embedding_size=512), 120,
                 2, 0, {"memory_size": 8192, "memory_dtype": "float16"}),
    "stml_xbm_pos": ("stml_xbm", 0, dict(backbone="googlenet", pooling="avgmax", head="linear", embedding_size=512),
                     120, 2, 0, {"memory_size": 8192, "memory_dtype": "float16",
                                 "memory_terms": "negatives+positives"}),
    "insclr_base": ("insclr", 0, dict(backbone="resnet101", pooling="gem", head="norm_linear_norm",
                                      embedding_size=2048), 256, 1, 200_000, {"memory_dtype": "float16"}),
    # the official base stage: no in-batch selection, so no no-augmentation forward (thesis T_h1 = 0.95 needs it)
    "insclr_base_official": ("insclr", 0, dict(backbone="resnet101", pooling="gem", head="norm_linear_norm",
                                               embedding_size=2048), 256, 1, 200_000,
                             {"memory_dtype": "float16", "base_selection_threshold": None}),
    "insclr_impr": ("insclr", 3, dict(backbone="resnet101", pooling="gem", head="norm_linear_norm",
                                      embedding_size=2048), 256, 1, 200_000, {"memory_dtype": "float16"}),
    "isl_round0": ("isl", 0, dict(backbone="resnet18", pooling="avg", head="linear", embedding_size=128), 128, 1,
                   50_000, {}),
    "isl_round1": ("isl", 2, dict(backbone="resnet18", pooling="avg", head="linear", embedding_size=128), 128, 1,
                   50_000, {}),
}
PROFILES: dict[str, dict] = {
    "paper": {"px": 224, "cases": _PAPER},
    "cpu": {"px": 64, "cases": {
        "spreading": ("spreading", 0, dict(_PAPER["spreading"][2]), 16, 2, 0, {}),
        "stml": ("stml", 0, dict(_PAPER["stml"][2]), 15, 2, 0, {}),
        "stml_xbm": ("stml_xbm", 0, dict(_PAPER["stml"][2]), 15, 2, 0, {"memory_size": 1024}),
        "stml_xbm_pos": ("stml_xbm", 0, dict(_PAPER["stml"][2]), 15, 2, 0,
                         {"memory_size": 1024, "memory_terms": "negatives+positives"}),
        "insclr_base": ("insclr", 0, dict(_PAPER["insclr_base"][2], backbone="resnet18", embedding_size=128), 32, 1,
                        4096, {"pool_size": 64}),
        "insclr_impr": ("insclr", 3, dict(_PAPER["insclr_impr"][2], backbone="resnet18", embedding_size=128), 32, 1,
                        4096, {"pool_size": 64}),
        "isl_round0": ("isl", 0, dict(_PAPER["isl_round0"][2]), 32, 1, 4096, {}),
        "isl_round1": ("isl", 2, dict(_PAPER["isl_round1"][2]), 32, 1, 4096, {}),
    }},
    # smoke tests only (and the CUDA tests' step checks): a 4-layer convnet at 32 px
    "tiny": {"px": 32, "cases": {
        "spreading": ("spreading", 0, dict(_PAPER["spreading"][2], backbone="convnet4"), 4, 2, 0, {}),
        "stml": ("stml", 0, dict(_PAPER["stml"][2], backbone="convnet4", embedding_size=64), 10, 2, 0,
                 {"g_embedding_size": 64}),
        "stml_xbm": ("stml_xbm", 0, dict(_PAPER["stml"][2], backbone="convnet4", embedding_size=64), 10, 2, 0,
                     {"g_embedding_size": 64, "memory_size": 64, "memory_dtype": "float16"}),
        "stml_xbm_pos": ("stml_xbm", 0, dict(_PAPER["stml"][2], backbone="convnet4", embedding_size=64), 10, 2, 0,
                         {"g_embedding_size": 64, "memory_size": 64, "memory_dtype": "float16",
                          "memory_terms": "negatives+positives"}),
        "insclr_base": ("insclr", 0, dict(_PAPER["insclr_base"][2], backbone="convnet4", embedding_size=64), 8, 1,
                        256, {"pool_size": 16, "memory_dtype": "float16"}),
        "insclr_impr": ("insclr", 3, dict(_PAPER["insclr_impr"][2], backbone="convnet4", embedding_size=64), 8, 1,
                        256, {"pool_size": 16, "memory_dtype": "float16"}),
        "isl_round0": ("isl", 0, dict(_PAPER["isl_round0"][2], backbone="convnet4"), 4, 1, 256, {}),
        "isl_round1": ("isl", 2, dict(_PAPER["isl_round1"][2], backbone="convnet4"), 4, 1, 256, {}),
    }},
}


class _RandomItems:
    """Map-style stand-in: tiny PIL images (never decoded by the timed steps), labels, no transform."""

    transform = None
    root = None

    def __init__(self, n: int, n_classes: int = 100):
        self.labels = np.arange(n) % n_classes
        self._img = Image.new("RGB", (8, 8))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self._img, int(self.labels[i]), int(i)


def _unit(n: int, d: int, device: torch.device) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, d, device=device), dim=1)


def _setup(case: tuple, px: int, device: torch.device, out_dir: Path):
    name, stage, model_kw, batch, per_item, bank, cfg_over = case
    torch.manual_seed(0)
    model = build_model(**model_kw)
    mcfg = method_config(name, cfg_over)
    n = max(bank, 4 * batch, 64)
    tcfg = train_config(name, {"batch_size": batch, "device": device.type, "channels_last": True})
    method = METHODS[name](model, mcfg, train_transform=lambda x: x, test_transform=lambda x: x)
    stages = getattr(type(method), "stages", None)
    names = tuple(s.name for s in stages(mcfg)) if stages else ("train",)
    method.stage_info = StageInfo(stage, names[stage], out_dir, (), names)
    data = _RandomItems(n)
    ctx = FitContext(cfg=tcfg, method=method, device=device, out_dir=out_dir, train_set=data,
                     datasets={"noaug": data}, amp_dtype=resolve_amp(tcfg, device))
    if name == "insclr":  # a random pool file: the stage reads it instead of embedding the data
        pool = torch.stack([torch.randperm(n)[: mcfg.pool_size] for _ in range(1)]).expand(n, -1)
        pool = (pool + torch.arange(n)[:, None] + 1) % n
        sims = torch.linspace(0.9, 0.3, mcfg.pool_size).expand(n, -1)
        save_candidate_pool(out_dir / "candidate_pool.npz", pool, sims)
    method.to(device)
    if device.type == "cuda":
        method.to(memory_format=torch.channels_last)
    method.on_fit_start(ctx)
    method.to(device)
    dim = model.embedding_dim
    if name == "insclr":
        mem = method.memory
        for bank_ in ([mem] if hasattr(mem, "features") else [mem.aug, mem.noaug]):
            bank_.write(torch.arange(n), _unit(n, dim, device), gather=False)
    if name == "stml_xbm":  # a full queue of random rows (ids of the items, so the diagnostics can read labels)
        mem = method.memory
        mem.enqueue(torch.arange(mem.size, device=device) % n, gather=False,
                    **{b: torch.randn(mem.size, getattr(mem, f"bank_{b}").shape[1], device=device) for b in mem.names})
    ctx.step = 10**6  # past InsCLR's memory_use_step: the steady state with the bank in the loss
    optimizer, _ = build_optimizer(method.param_groups(tcfg), tcfg)
    ctx.optimizer = optimizer
    method.train()
    return method, ctx, optimizer, tcfg, n


def _batch(name: str, batch: int, px: int, n: int, device: torch.device, k: int, plain: bool = True):
    def img(b):
        x = torch.randn(b, 3, px, px, device=device)
        return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x

    idx = torch.randperm(n, device=device)[:batch]
    labels = idx % 100
    if name in ("spreading", "stml", "stml_xbm"):
        return ((img(batch), img(batch)), labels, idx), 2 * batch
    if name == "insclr":
        anchors = torch.randperm(n, device=device)[: batch // (1 + k)]
        idx = torch.cat([anchors[:, None], (anchors[:, None] + torch.arange(1, k + 1, device=device)) % n], 1)
        idx = idx.reshape(-1)
        if not plain:  # no selection: the augmented view only
            return (img(idx.numel()), idx % 100, idx), idx.numel()
        return (img(idx.numel()), img(idx.numel()), idx % 100, idx), idx.numel()
    return (img(batch), labels, idx), batch


def _uses_plain_view(method) -> bool:
    """InsCLR feeds a no-augmentation view too when its stage selects positives in the batch."""
    from ssml_lib.methods.insclr import _AugAndPlain

    return isinstance(getattr(method, "_data", None), _AugAndPlain)


def prepare_case(case: tuple, px: int, device: torch.device, out_dir: Path):
    """A case set up for timing: ``(method, ctx, optimizer, train_cfg, batch, images per step)``; the batch
    is random, on the device, shaped as the method's loader would give it."""
    method, ctx, optimizer, tcfg, n = _setup(case, px, device, out_dir)
    k = getattr(method.cfg, "num_neighbors", 1)
    batch, images = _batch(case[0], case[3], px, n, device, k, plain=_uses_plain_view(method))
    return method, ctx, optimizer, tcfg, batch, images


def _method_step(method, ctx, opt, batch, device):
    with autocast(device, ctx.amp_dtype):
        out = method.training_step(batch)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    method.on_before_optimizer_step(ctx.step, ctx)
    opt.step()
    method.on_after_step(ctx.step, ctx)


def _student_images(name: str, batch: Any) -> torch.Tensor:
    if name in ("spreading", "stml", "stml_xbm"):
        return torch.cat(batch[0])
    return batch[0]


def _baseline_step(model, opt, images, device, amp):
    with autocast(device, amp):
        out = model(images)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        loss = sum(o.float().square().mean() for o in outs)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _timed(fn, steps: int, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def bf16_vs_float32(case_name: str, device: torch.device, profile: str = "tiny") -> tuple[dict, dict]:
    """The scalar outputs of one training step's forward (loss and its parts) in float32 and under bf16
    autocast, each from a fresh set-up with the same seed (a step writes banks, so the two must not share
    state). TF32 is off for the float32 side. Works on a CPU too (CPU bf16 autocast)."""
    spec = PROFILES[profile]
    out = []
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    for amp in (None, torch.bfloat16):
        case = spec["cases"][case_name]
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method, _ctx, _opt, _tcfg, batch, _ = prepare_case(case, spec["px"], device, Path(tmp))
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            try:
                with torch.no_grad(), autocast(device, amp):
                    res = method.training_step(batch)
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
            out.append({key: float(v) for key, v in res.items() if torch.is_tensor(v) and v.dim() == 0})
    return out[0], out[1]


def count_syncs(fn, device: torch.device) -> list[str]:
    """Host-device synchronisations during one call of ``fn`` (CUDA's sync debug mode; [] on a CPU), each as
    'file:line' of the Python frame that caused it."""
    if device.type != "cuda":
        return []
    sync(device)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]


def _profile(fn, device, steps: int = 2, top: int = 10) -> list[dict]:
    """Top operators by self time over a few steps (CUDA time on GPUs)."""
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda"
                                                   else [])
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(steps):
            fn()
        sync(device)
    key = "self_cpu_time_total"
    if device.type == "cuda":  # renamed across torch versions
        key = "self_device_time_total" if hasattr(prof.key_averages()[0], "self_device_time_total") \
            else "self_cuda_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0) or 0, reverse=True)[:top]
    total = sum(getattr(e, key, 0) or 0 for e in prof.key_averages()) or 1
    return [{"op": e.key, "self_ms_per_step": (getattr(e, key, 0) or 0) / 1000 / steps,
             "share": (getattr(e, key, 0) or 0) / total, "calls_per_step": e.count / steps} for e in events]


def run_methods(device: torch.device, profile: str, *, quick: bool, cases: list[str] | None = None,
                tiny: bool = False, compile: bool = False, on_rows=None, log=print) -> list[dict]:
    """One row per case: step times, images/s and the overhead ratio; an op profile where over target; the
    host-device synchronisations of one method step (CUDA). ``compile``: ``torch.compile`` the method's
    ``compiled_modules()`` in place first (as ``TrainConfig.compile``); the warm-up then includes compilation,
    and its time is reported."""
    spec = PROFILES["tiny" if tiny else profile]
    warm, blocks, per_block = (1, 3, 1) if quick else ((3, 5, 2) if device.type == "cpu" else (10, 7, 10))
    rows = []
    for case_name, case in spec["cases"].items():
        if cases and case_name not in cases and case[0] not in cases:
            continue
        name, _stage, model_kw, batch, _per_item, _bank, _ = case
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # adamp absent -> AdamW, stand-in counts
            method, ctx, opt, tcfg, b, images = prepare_case(case, spec["px"], device, Path(tmp))
            base_opt, _ = build_optimizer([{"name": "all", "params": list(method.model.named_parameters())}], tcfg)
            student = _student_images(name, b)
            m_fn = lambda: _method_step(method, ctx, opt, b, device)  # noqa: E731
            b_fn = lambda: _baseline_step(method.model, base_opt, student, device, ctx.amp_dtype)  # noqa: E731
            if compile:
                for module in method.compiled_modules():
                    module.compile()
            t_warm = time.perf_counter()
            _timed(m_fn, max(warm, 3 if compile else 1), device)
            _timed(b_fn, max(warm, 3 if compile else 1), device)
            t_warm = time.perf_counter() - t_warm
            syncs = count_syncs(m_fn, device)
            m_times, b_times = [], []
            for _ in range(blocks):  # alternate blocks: drift on a shared machine hits both alike
                b_times.append(_timed(b_fn, per_block, device))
                m_times.append(_timed(m_fn, per_block, device))
            tm, tb = statistics.median(m_times), statistics.median(b_times)
            row = {"case": case_name, "method": name, "backbone": model_kw["backbone"],
                   "embedding": model_kw["embedding_size"], "batch_items": batch, "images_per_step": images,
                   "resolution": spec["px"], "bank_items": len(ctx.train_set) if _bank else
                   getattr(getattr(method, "memory", None), "size", None),
                   "dtype": str(ctx.amp_dtype).replace("torch.", "") if ctx.amp_dtype else "float32",
                   "channels_last": device.type == "cuda", "step_s": tm, "backbone_step_s": tb,
                   "images_per_s": images / tm, "backbone_images_per_s": images / tb, "overhead": tm / tb,
                   "target": TARGETS.get(name), "profile": profile, "blocks": blocks, "steps_per_block": per_block,
                   "step_s_all": m_times, "backbone_step_s_all": b_times, "compiled": compile,
                   "warmup_s": t_warm, "host_syncs_per_step": len(syncs), "host_sync_sites": sorted(set(syncs))}
            row["meets_target"] = None if row["target"] is None else row["overhead"] <= row["target"]
            if row["meets_target"] is False:
                row["op_profile"] = _profile(m_fn, device, steps=1 if quick else 2)
                row["backbone_op_profile"] = _profile(b_fn, device, steps=1 if quick else 2)
            log(f"  {case_name:12s} {row['step_s'] * 1e3:8.1f} ms/step vs backbone {tb * 1e3:8.1f} ms  "
                f"overhead {row['overhead']:.3f} (target {row['target']})  {row['images_per_s']:.1f} img/s"
                f"{'  compiled' if compile else ''}  syncs/step {len(syncs)} {sorted(set(syncs))[:3]}")
            rows.append(row)
            if on_rows is not None:
                on_rows(rows)
            del method, opt, base_opt, b, student
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


__all__ = ["PROFILES", "TARGETS", "bf16_vs_float32", "count_syncs", "prepare_case", "run_methods"]
