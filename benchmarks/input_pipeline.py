"""Input pipeline: decoded + augmented images per second from JPEG files (the stand-in generator writes them),
with CPU DataLoader workers 0/1/2 (PIL decode + the thesis train transform), and with
``torchvision.io.decode_jpeg`` on the GPU plus the same augmentation on GPU tensors when CUDA is there. The GPU
idle fraction during training (CUDA only) is 1 - (GPU time in decoding and training steps, by CUDA events) / wall
time of a Spreading training loop fed by CPU workers (PIL decode) or by the device-decode path
(``TrainConfig(decode='gpu')``'s ``ssml_lib.data.device_decode``)."""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from ssml_lib.data import build_transform, open_dataset
from ssml_lib.data.standin import make_standin
from ssml_lib.data.standin.sizes import DmlSize

from ._measure import sync


def _jpegs(tmp: Path, image_px: int, per_class: int):
    root = make_standin("cub200", tmp, DmlSize(8, 8, (per_class, per_class), image_px))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from CUB's
        return root, open_dataset("cub200", root, "train")


def _one_long_epoch(ds, batch: int, images: int) -> RandomSampler:
    """Items drawn with replacement for ``images`` items in ONE epoch: a loader restarted every few batches
    (a small stand-in set) keeps only that many workers busy and measures its start-up, not its throughput."""
    return RandomSampler(ds, replacement=True, num_samples=images, generator=torch.Generator().manual_seed(0))


def _cpu_rate(ds, workers: int, batch: int, min_images: int) -> tuple[float, int]:
    warm = batch * max(1, workers)  # the first batch of every worker: start-up, not throughput
    loader = DataLoader(ds, batch_size=batch, sampler=_one_long_epoch(ds, batch, min_images + warm),
                        num_workers=workers, drop_last=True)
    seen, t0 = 0, None
    for images, _, _ in loader:
        if t0 is None:
            seen, t0 = -images.shape[0], time.perf_counter()  # clock starts after the first batch
        seen += images.shape[0]
        if seen >= min_images:
            break
    return seen / (time.perf_counter() - t0), seen


def _gpu_rate(paths: list[str], px: int, batch: int, min_images: int, device: torch.device) -> tuple[float, int]:
    import torchvision
    from torchvision.transforms import v2

    datas = [torchvision.io.read_file(p) for p in paths]
    aug = v2.Compose([v2.RandomResizedCrop(px, antialias=True), v2.RandomHorizontalFlip(),
                      v2.ToDtype(torch.float32, scale=True),
                      v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    torchvision.io.decode_jpeg(datas[:2], device=device)
    seen = 0
    sync(device)
    t0 = time.perf_counter()
    while seen < min_images:
        for s in range(0, len(datas), batch):
            imgs = torchvision.io.decode_jpeg(datas[s:s + batch], device=device)
            out = torch.stack([aug(im) for im in imgs])  # per-image crop: sizes differ before it
            seen += out.shape[0]
    sync(device)
    return seen / (time.perf_counter() - t0), seen


def _gpu_idle_fraction(ds_train, device: torch.device, workers: int, batch: int, steps: int,
                       decode: str = "cpu") -> dict:
    """Spreading (GoogLeNet, bf16, channels_last) at the given batch fed by a DataLoader with ``workers``
    workers. ``decode='cpu'``: PIL decode + augmentation in the workers; ``'gpu'``: the workers read bytes and
    draw crops (``ssml_lib.data.device_decode``, as ``TrainConfig(decode='gpu')``), nvJPEG decodes and the crops
    are resized on the GPU. CUDA events time the GPU's decode and training work; the idle fraction is the
    share of wall time in neither."""
    from ssml_lib.data.device_decode import EncodedFiles, deferred_transform, device_collate
    from ssml_lib.losses import spreading_loss
    from ssml_lib.models import build_model

    model = build_model("googlenet", pooling="avg", head="linear", embedding_size=128).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    if decode == "gpu":
        items, tf = EncodedFiles(_untransformed(ds_train)), deferred_transform(ds_train.transform)
    else:
        items, tf = _untransformed(ds_train), ds_train.transform

    class Two(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            image = items[i][0]
            return tf(image), tf(image)

    two = Two()
    loader = DataLoader(two, batch_size=batch, sampler=_one_long_epoch(two, batch, (steps + 1) * batch),
                        num_workers=workers, pin_memory=True, drop_last=True,
                        collate_fn=device_collate if decode == "gpu" else None)
    n_steps, step_events, decode_events = 0, [], []
    t0 = None
    while n_steps < steps:
        for v1, v2 in loader:
            if t0 is None:
                sync(device)
                t0 = time.perf_counter()
            d0, d1, s0, s1 = (torch.cuda.Event(enable_timing=True) for _ in range(4))
            d0.record()
            if decode == "gpu":
                x = torch.cat([v1.materialize(device, True), v2.materialize(device, True)])
            else:
                # each view copied, then joined on the device (as the engine's to_device + the method's cat); the
                # input_cuda.json of 2026-11-23 ran an older loop that joined the views on the host first
                x = torch.cat([v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)])
                x = x.contiguous(memory_format=torch.channels_last)
            d1.record()
            s0.record()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                e = model(x)
            e1, e2 = e.float().chunk(2)
            loss = spreading_loss(e1, e2, 0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            s1.record()
            step_events.append((s0, s1))
            decode_events.append((d0, d1))
            n_steps += 1
            if n_steps >= steps:
                break
    sync(device)
    wall = time.perf_counter() - t0
    busy = sum(a.elapsed_time(b) for a, b in step_events[1:]) / 1000  # the first step started the clock
    dec = sum(a.elapsed_time(b) for a, b in decode_events[1:]) / 1000
    return {"gpu_idle_fraction": max(0.0, 1 - (busy + dec) / wall), "gpu_decode_fraction": dec / wall,
            "train_images_per_s": (n_steps - 1) * 2 * batch / wall, "steps": n_steps, "wall_s": wall,
            "workers": workers, "batch_items": batch, "decode": decode}


def _untransformed(ds):
    import copy

    plain = copy.copy(ds)
    plain.transform = None
    return plain


def run_input(device: torch.device, profile: str, *, quick: bool, on_rows=None, log=print) -> list[dict]:
    px, image_px, batch = (224, 500, 64) if profile == "paper" else (64, 160, 16)  # 500 px: CUB's typical side
    per_class = 4 if quick else 16
    min_images = 32 if quick else 256
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, base = _jpegs(Path(tmp), image_px, per_class)
        tf = build_transform("thesis", True, px, int(px * 256 / 224))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = open_dataset("cub200", root, "train", transform=tf)
        for workers in (0, 1, 2):
            rate, seen = _cpu_rate(ds, workers, batch, min_images)
            rows.append({"pipeline": f"PIL decode + thesis augment, {workers} worker(s)", "workers": workers,
                         "images_per_s": rate, "images": seen, "jpeg_px": image_px, "output_px": px})
            log(f"  cpu workers={workers}: {rate:.1f} img/s")
        if device.type == "cuda":
            rate, seen = _gpu_rate(list(base.paths), px, batch, min_images, device)
            rows.append({"pipeline": "torchvision.io.decode_jpeg on GPU + RandomResizedCrop/flip on GPU",
                         "workers": None, "images_per_s": rate, "images": seen, "jpeg_px": image_px, "output_px": px})
            log(f"  gpu decode: {rate:.1f} img/s")
            for decode, workers in (("cpu", 2), ("cpu", 8), ("cpu", 14), ("gpu", 2), ("gpu", 4)):
                idle = _gpu_idle_fraction(ds, device, workers, batch, steps=10 if quick else 40, decode=decode)
                rows.append({"pipeline": f"training (spreading, googlenet, bf16) fed by {workers} workers, "
                                         f"{'PIL decode on the CPU' if decode == 'cpu' else 'nvJPEG decode on the GPU'}",
                             **idle, "images_per_s": idle["train_images_per_s"], "jpeg_px": image_px,
                             "output_px": px})
                if on_rows is not None:
                    on_rows(rows)
                log(f"  training, {decode} decode, {workers} workers: idle {idle['gpu_idle_fraction']:.3f}, "
                    f"decode {idle['gpu_decode_fraction']:.3f}, {idle['train_images_per_s']:.0f} img/s")
        else:
            rows.append({"pipeline": "training fed by CPU workers", "gpu_idle_fraction": "n/a",
                         "note": "no CUDA device: the GPU idle fraction is measured on GPU runs only"})
    return rows


__all__ = ["run_input"]
