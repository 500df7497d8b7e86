"""Input pipeline: decoded + augmented images per second from JPEG files (the stand-in generator writes them),
with CPU DataLoader workers 0/1/2 (PIL decode + the thesis train transform), and with
``torchvision.io.decode_jpeg`` on the GPU plus the same augmentation on GPU tensors when CUDA is there. The GPU
idle fraction during training (CUDA only) is 1 - (time the GPU spent inside steps, by CUDA events) / wall time
of a Spreading training loop fed by the CPU loader."""
from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ssml_lib.data import build_transform, open_dataset
from ssml_lib.data.standin import make_standin
from ssml_lib.data.standin.sizes import DmlSize

from ._measure import sync


def _jpegs(tmp: Path, image_px: int, per_class: int):
    root = make_standin("cub200", tmp, DmlSize(8, 8, (per_class, per_class), image_px))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in counts differ from CUB's
        return root, open_dataset("cub200", root, "train")


def _cpu_rate(ds, workers: int, batch: int, min_images: int) -> tuple[float, int]:
    loader = DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers,
                        persistent_workers=workers > 0)
    next(iter(loader))  # worker start-up is not throughput
    seen, t0 = 0, time.perf_counter()
    while seen < min_images:
        for images, _, _ in loader:
            seen += images.shape[0]
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


def _gpu_idle_fraction(ds_train, device: torch.device, workers: int, batch: int, steps: int) -> dict:
    """Spreading at the given batch fed by a CPU DataLoader; GPU busy time from events around each step."""
    from ssml_lib.losses import spreading_loss
    from ssml_lib.models import build_model

    model = build_model("googlenet", pooling="avg", head="linear", embedding_size=128).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    class Two(torch.utils.data.Dataset):
        def __len__(self):
            return len(ds_train)

        def __getitem__(self, i):
            a, _, _ = ds_train[i]
            b, _, _ = ds_train[i]
            return a, b

    loader = DataLoader(Two(), batch_size=batch, shuffle=True, num_workers=workers, pin_memory=True,
                        drop_last=True, persistent_workers=workers > 0)
    busy, n_steps, pairs = 0.0, 0, []
    t0 = None
    while n_steps < steps:
        for v1, v2 in loader:
            if t0 is None:
                sync(device)
                t0 = time.perf_counter()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            x = torch.cat([v1, v2]).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            start.record()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                e = model(x)
            e1, e2 = e.float().chunk(2)
            loss = spreading_loss(e1, e2, 0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            end.record()
            pairs.append((start, end))
            n_steps += 1
            if n_steps >= steps:
                break
    sync(device)
    wall = time.perf_counter() - t0
    busy = sum(s.elapsed_time(e) for s, e in pairs[1:]) / 1000  # the first step started the clock
    return {"gpu_idle_fraction": max(0.0, 1 - busy / wall), "steps": n_steps, "wall_s": wall, "workers": workers,
            "batch_items": batch}


def run_input(device: torch.device, profile: str, *, quick: bool, log=print) -> list[dict]:
    px, image_px, batch = (224, 320, 64) if profile == "paper" else (64, 160, 16)
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
            for workers in (2, 8):
                idle = _gpu_idle_fraction(ds, device, workers, batch, steps=10 if quick else 60)
                rows.append({"pipeline": f"training (spreading, googlenet) fed by {workers} CPU workers",
                             "workers": workers, **idle})
                log(f"  gpu idle fraction with {workers} workers: {idle['gpu_idle_fraction']:.3f}")
        else:
            rows.append({"pipeline": "training fed by CPU workers", "gpu_idle_fraction": "n/a",
                         "note": "no CUDA device: the GPU idle fraction is measured on GPU runs only"})
    return rows


__all__ = ["run_input"]
