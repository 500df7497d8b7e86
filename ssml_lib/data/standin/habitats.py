"""Habitats: the shared surroundings of the stand-in objects (background, small clutter, light).

Why (measured; see docs/standin.md): when every image draws its own smooth background, colour cast, light
ramp and clutter layout, those cues identify an image better than its object does, survive crops and flips,
and two-view instance discrimination learns them instead of object identity. Real backgrounds differ from
photo to photo but are of a few kinds (foliage, water, road, a studio sweep). So a dataset draws a small pool
of habitats; a habitat fixes the *statistics* of the surroundings (colours, texture frequencies and
orientations, clutter shapes and density, light), and every image draws its own *layout* within it (texture
phases, clutter positions, a small light jitter). A network with global pooling then sees a habitat-level
signal shared by many images of many classes, and the object is the only content that is both unique to an
image and stable under the training crops.

Styles, one per kind of real data (:data:`HABITAT_STYLES`): ``foliage`` (CUB: gratings and dense small
clutter), ``street`` (Cars: banded ground and sparse clutter), ``studio`` (SOP: plain light sweep, no
clutter, as catalogue photos), ``outdoor`` (landmarks: sky over textured ground), ``blobs`` (the stand-in
"ImageNet": blotchy backgrounds, other clutter shapes, other light ranges, so the source's nuisance
statistics differ from the targets').
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from .classes import Part, random_color, random_part, stable_rng
from .shapes import SOURCE_SHAPES, TARGET_SHAPES


@dataclass(frozen=True)
class HabitatStyle:
    background: Literal["gratings", "blobs", "studio", "outdoor"]
    count: int  # habitats in a dataset's pool
    texture_amp: tuple[float, float]  # grating amplitude (blobs: blob strength), 0-1 scale
    texture_freq: tuple[float, float]  # grating cycles per image side
    clutter: tuple[int, int]  # small primitives per image, inclusive range of a habitat's density
    clutter_size: tuple[float, float]  # their size, fraction of the shorter side
    clutter_shapes: tuple[str, ...]
    color_cast: float  # habitat light: per-channel gain in [1 - c, 1 + c]
    brightness: float
    contrast: tuple[float, float]
    light_gradient: float  # multiplicative ramp across the image (its direction is the habitat's)


HABITAT_STYLES: dict[str, HabitatStyle] = {
    "foliage": HabitatStyle("gratings", 12, (0.04, 0.10), (5.0, 14.0), (8, 20), (0.03, 0.07), TARGET_SHAPES,
                            0.15, 0.12, (0.7, 1.15), 0.25),
    "street": HabitatStyle("gratings", 12, (0.03, 0.08), (2.0, 8.0), (2, 8), (0.03, 0.08), TARGET_SHAPES,
                           0.12, 0.12, (0.7, 1.15), 0.25),
    "studio": HabitatStyle("studio", 6, (0.0, 0.0), (1.0, 1.0), (0, 0), (0.03, 0.07), TARGET_SHAPES,
                           0.05, 0.05, (0.9, 1.1), 0.1),
    "outdoor": HabitatStyle("outdoor", 12, (0.03, 0.08), (4.0, 12.0), (3, 10), (0.03, 0.07), TARGET_SHAPES,
                            0.12, 0.12, (0.7, 1.15), 0.25),
    "blobs": HabitatStyle("blobs", 16, (0.5, 0.8), (1.0, 1.0), (2, 8), (0.03, 0.08), SOURCE_SHAPES,
                          0.2, 0.15, (0.6, 1.2), 0.3),
}
DATASET_STYLES = {"cub200": "foliage", "cars196": "street", "sop": "studio", "gldv2": "outdoor",
                  "roxford5k": "outdoor", "rparis6k": "outdoor", "revisitop1m": "outdoor", "imagenet": "blobs",
                  "cifar10": "outdoor", "cifar100": "outdoor", "stl10": "outdoor"}


@dataclass(frozen=True)
class Habitat:
    """One habitat of a pool: everything about the surroundings that many images share."""

    index: int
    style: HabitatStyle
    colours: tuple[np.ndarray, np.ndarray]  # background base colours
    direction: float  # gradient / light-ramp direction, radians
    gratings: tuple[tuple[float, float, float, np.ndarray], ...]  # (cycles, orientation, amplitude, tint)
    blob_sd: float
    clutter_count: int
    clutter_shapes: tuple[str, ...]
    palette: tuple[tuple[float, float, float], ...]  # clutter and occluder colours
    light: tuple[np.ndarray, float, float, float]  # (channel gains, contrast, brightness, ramp strength)


def draw_habitat(namespace: str, seed: int, index: int, style: HabitatStyle) -> Habitat:
    rng = stable_rng("habitat", namespace, seed, index)
    colours = tuple((0.3 + 0.45 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)).astype(np.float32)
                    for _ in range(2))
    if style.background == "studio":  # a light, nearly neutral sweep
        colours = tuple(np.full(3, rng.uniform(0.78, 0.92), np.float32) + rng.uniform(-0.04, 0.04, 3).astype(np.float32)
                        for _ in range(2))
    gratings = tuple((float(rng.uniform(*style.texture_freq)), float(rng.uniform(0, np.pi)),
                      float(rng.uniform(*style.texture_amp)), np.asarray(random_color(rng), np.float32))
                     for _ in range(int(rng.integers(1, 4))))
    shapes = tuple(rng.choice(style.clutter_shapes, 2, replace=False).tolist())
    lo, hi = style.clutter
    light = (rng.uniform(1 - style.color_cast, 1 + style.color_cast, 3).astype(np.float32),
             float(rng.uniform(*style.contrast)), float(rng.uniform(-style.brightness, style.brightness)),
             float(rng.uniform(0, style.light_gradient)))
    return Habitat(index, style, colours, float(rng.uniform(0, 2 * np.pi)), gratings, float(rng.uniform(0.06, 0.15)),
                   int(rng.integers(lo, hi + 1)), shapes, tuple(random_color(rng) for _ in range(3)), light)


class HabitatPool:
    """A dataset's habitats; ``draw(rng)`` picks one uniformly for an image."""

    def __init__(self, namespace: str, seed: int, style: HabitatStyle | str):
        self.style = HABITAT_STYLES[style] if isinstance(style, str) else style
        self.habitats = [draw_habitat(namespace, seed, i, self.style) for i in range(self.style.count)]

    def draw(self, rng: np.random.Generator) -> Habitat:
        return self.habitats[int(rng.integers(len(self.habitats)))]

    @classmethod
    def for_dataset(cls, name: str, seed: int, namespace: Optional[str] = None) -> "HabitatPool":
        return cls(namespace or name, seed, DATASET_STYLES[name])


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    return xs, ys


def paint_background(hab: Habitat, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The habitat's background at (h, w), with this image's own texture phases and blob positions."""
    xs, ys = _grid(h, w)
    c1, c2 = hab.colours
    style = hab.style.background
    if style == "blobs":
        img = np.broadcast_to(c1, (h, w, 3)).astype(np.float32).copy()
        strength = hab.gratings[0][2]
        for _ in range(12):
            cx, cy = rng.uniform(-0.6, 0.6, 2)
            weight = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * hab.blob_sd ** 2))[..., None] * strength
            img = img * (1 - weight) + c2 * weight
        return img + rng.normal(0, 0.03, (h, w, 1)).astype(np.float32)
    if style == "outdoor":  # sky above a textured ground; the horizon moves a little per image
        t = np.clip((ys - rng.uniform(-0.15, 0.15)) * 4 + 0.5, 0.0, 1.0)[..., None]
    else:
        t = np.clip(0.5 + 0.6 * (np.cos(hab.direction) * xs + np.sin(hab.direction) * ys), 0.0, 1.0)[..., None]
    img = np.broadcast_to(c1 * (1 - t) + c2 * t, (h, w, 3)).astype(np.float32)
    if style == "studio":
        return img * (1 - 0.25 * (xs * xs + ys * ys))[..., None]  # soft vignette
    for cycles, orientation, amp, tint in hab.gratings:
        phase = rng.uniform(0, 2 * np.pi)  # per image: the texture never lines up across two photos
        wave = amp * np.sin(2 * np.pi * cycles * (np.cos(orientation) * xs + np.sin(orientation) * ys) + phase)
        img += wave[..., None] * (t if style == "outdoor" else 1.0) * tint
    return img


def paint_clutter(canvas: np.ndarray, hab: Habitat, rng: np.random.Generator, draw_part) -> None:
    """Small primitives of the habitat's shapes and palette at this image's own positions."""
    h, w = canvas.shape[:2]
    side = min(h, w)
    lo, hi = hab.style.clutter_size
    for _ in range(hab.clutter_count):
        part: Part = dataclasses.replace(random_part(rng, 0.0, hab.clutter_shapes), cx=0.0, cy=0.0,
                                         color=hab.palette[int(rng.integers(len(hab.palette)))])
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        theta = rng.uniform(0, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        draw_part(canvas, part, centre, np.array([[c, -s], [s, c]]) * side * rng.uniform(lo, hi))


def apply_light(canvas: np.ndarray, hab: Habitat, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The habitat's light (channel gains, contrast, brightness, a ramp) with a small per-image jitter."""
    gains, contrast, brightness, ramp = hab.light
    style = hab.style
    if jitter > 0:
        gains = gains * rng.uniform(1 - jitter * style.color_cast, 1 + jitter * style.color_cast, 3).astype(np.float32)
        contrast *= rng.uniform(1 - 0.3 * jitter, 1 + 0.3 * jitter)
        brightness += rng.uniform(-jitter * style.brightness, jitter * style.brightness)
    canvas = canvas * gains
    mean = canvas.mean()
    canvas = (canvas - mean) * contrast + mean + brightness
    h, w = canvas.shape[:2]
    xs, ys = _grid(h, w)
    direction = hab.direction + (rng.normal(0, jitter) if jitter > 0 else 0.0)
    return canvas * (1 + ramp * (np.cos(direction) * xs + np.sin(direction) * ys))[..., None].astype(np.float32)
