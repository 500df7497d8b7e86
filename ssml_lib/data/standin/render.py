"""Render one view of a procedural object: pose, lighting, background clutter and occluders.

Pure NumPy on a 2x supersampled canvas (then box-filtered), so the output depends only on the inputs and the
generator state. Coordinates: x to the right, y down, pixel centres at +0.5.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .classes import ObjectClass, Part, random_color, random_part

SUPERSAMPLE = 2


@dataclass(frozen=True)
class ViewRanges:
    """Ranges the per-image nuisances are drawn from (uniformly unless said otherwise)."""

    rotation_deg: float  # |rotation| at most this
    scale: tuple[float, float]  # object diameter / shorter image side
    shear: float
    stretch: float  # anisotropic scaling, |log(sx / sy)| at most this
    shift: float  # object centre offset, fraction of each image side
    flip: bool  # mirror half of the views
    part_jitter: float  # per-part offset (object units), the object is not rigid
    color_jitter: float
    brightness: float
    contrast: tuple[float, float]
    color_cast: float  # per-channel gain in [1 - c, 1 + c]
    light_gradient: float  # multiplicative illumination ramp across the image
    clutter: tuple[int, int]  # number of background primitives, inclusive
    occlusion_prob: float
    occlusion: tuple[float, float]  # fraction of the object box an occluder covers
    noise: float  # pixel noise standard deviation (0-1 scale)


VIEWS: dict[str, ViewRanges] = {
    # Metric-learning sets: strong intra-class variation (STUDY.md §4).
    "dml": ViewRanges(40, (0.55, 0.95), 0.25, 0.25, 0.12, True, 0.05, 0.06, 0.15, (0.6, 1.2), 0.2, 0.3,
                      (2, 7), 0.5, (0.1, 0.4), 0.03),
    # Revisited retrieval: easy = clear views, hard = strongly transformed or occluded, junk = mostly hidden.
    "easy": ViewRanges(12, (0.6, 0.85), 0.08, 0.08, 0.12, False, 0.02, 0.03, 0.05, (0.9, 1.1), 0.05, 0.1,
                       (1, 4), 0.0, (0.0, 0.0), 0.01),
    "hard": ViewRanges(70, (0.35, 0.7), 0.35, 0.35, 0.22, True, 0.06, 0.1, 0.25, (0.5, 1.3), 0.3, 0.5,
                       (3, 8), 0.7, (0.2, 0.4), 0.04),
    "junk": ViewRanges(90, (0.25, 0.5), 0.35, 0.35, 0.25, True, 0.08, 0.12, 0.3, (0.4, 1.3), 0.35, 0.5,
                       (4, 9), 1.0, (0.6, 0.8), 0.05),
    # Queries: a clear, smaller view with context around it (the query box excludes the context).
    "query": ViewRanges(10, (0.4, 0.6), 0.05, 0.05, 0.15, False, 0.02, 0.03, 0.05, (0.9, 1.1), 0.05, 0.1,
                        (3, 6), 0.0, (0.0, 0.0), 0.01),
}


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    if shape == "disk":
        return u * u + v * v <= 1.0
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.3)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":  # equilateral, circumradius 1: three half-planes at distance 0.5
        return (v <= 0.5) & (0.866 * u - 0.5 * v <= 0.5) & (-0.866 * u - 0.5 * v <= 0.5)
    if shape == "bar":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= aspect)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 1.0) & (av <= aspect)) | ((av <= 1.0) & (au <= aspect))
    raise ValueError(f"unknown shape {shape!r}")


def draw_part(canvas: np.ndarray, part: Part, centre: np.ndarray, linear: np.ndarray,
              cover: np.ndarray | None = None) -> None:
    """Paint ``part`` of an object placed at ``centre`` with 2x2 map ``linear`` (object -> pixels), in place.

    Only the part's bounding window is evaluated, which keeps small clutter cheap.
    """
    h, w = canvas.shape[:2]
    pc = centre + linear @ np.array([part.cx, part.cy])
    reach = part.size * np.linalg.norm(linear, 2) * 1.2 + 1.0
    x0, x1 = max(0, int(pc[0] - reach)), min(w, int(pc[0] + reach) + 2)
    y0, y1 = max(0, int(pc[1] - reach)), min(h, int(pc[1] + reach) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    inv = np.linalg.inv(linear)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - centre[0]
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - centre[1]
    qx = inv[0, 0] * dx + inv[0, 1] * dy - part.cx
    qy = inv[1, 0] * dx + inv[1, 1] * dy - part.cy
    ca, sa = np.cos(part.angle), np.sin(part.angle)
    u = (ca * qx + sa * qy) / part.size
    v = (-sa * qx + ca * qy) / part.size
    mask = _shape_mask(part.shape, u, v, part.aspect)
    if not mask.any():
        return
    colour = np.asarray(part.color, dtype=np.float32)
    if part.pattern == "stripes":
        shade = np.where(np.sin(np.pi * part.frequency * u) > -0.2, 1.0, 0.45)
    elif part.pattern == "shaded":
        shade = 0.75 + 0.25 * np.clip(v, -1.0, 1.0)
    else:
        shade = None
    region = canvas[y0:y1, x0:x1]
    region[mask] = colour if shade is None else shade[mask, None].astype(np.float32) * colour
    if cover is not None:
        cover[y0:y1, x0:x1] |= mask


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # Muted two-colour gradient plus a low-frequency wave, so background statistics vary per image.
    c1 = 0.25 + 0.5 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)
    c2 = 0.25 + 0.5 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    phi = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + np.cos(phi) * xs + np.sin(phi) * ys, 0.0, 1.0)[..., None]
    img = (c1 * (1 - t) + c2 * t).astype(np.float32)
    freq, psi, amp = rng.uniform(2, 8), rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.08)
    wave = amp * np.sin(2 * np.pi * freq * (np.cos(psi) * xs + np.sin(psi) * ys) + rng.uniform(0, 2 * np.pi))
    return img + wave[..., None].astype(np.float32)


def _jittered(part: Part, view: ViewRanges, rng: np.random.Generator) -> Part:
    colour = np.clip(np.asarray(part.color) + rng.normal(0, view.color_jitter, 3), 0.0, 1.0)
    return dataclasses.replace(
        part, cx=part.cx + float(rng.normal(0, view.part_jitter)), cy=part.cy + float(rng.normal(0, view.part_jitter)),
        angle=part.angle + float(rng.normal(0, 2 * view.part_jitter)), color=tuple(float(c) for c in colour))


def _occlude(canvas: np.ndarray, box: tuple[int, int, int, int], fraction: float, rng: np.random.Generator) -> None:
    """Cover ``fraction`` of the object box from a random side with a flat or striped slab."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    side = int(rng.integers(4))
    ext_w, ext_h = int(rng.uniform(0, 0.3) * bw) + 1, int(rng.uniform(0, 0.3) * bh) + 1
    if side == 0:
        r = (x0 - ext_w, y0 - ext_h, x0 + int(round(fraction * bw)), y1 + ext_h)
    elif side == 1:
        r = (x1 - int(round(fraction * bw)), y0 - ext_h, x1 + ext_w, y1 + ext_h)
    elif side == 2:
        r = (x0 - ext_w, y0 - ext_h, x1 + ext_w, y0 + int(round(fraction * bh)))
    else:
        r = (x0 - ext_w, y1 - int(round(fraction * bh)), x1 + ext_w, y1 + ext_h)
    h, w = canvas.shape[:2]
    rx0, ry0, rx1, ry1 = max(0, r[0]), max(0, r[1]), min(w, r[2]), min(h, r[3])
    if rx0 >= rx1 or ry0 >= ry1:
        return
    colour = np.asarray(random_color(rng), dtype=np.float32) * rng.uniform(0.5, 1.0)
    slab = np.broadcast_to(colour, (ry1 - ry0, rx1 - rx0, 3)).copy()
    if rng.uniform() < 0.5:  # stripes, so occluders are not always flat colour
        period = max(2, int(rng.integers(3, 9)))
        slab[(np.arange(ry0, ry1)[:, None] + np.arange(rx0, rx1)[None, :]) // period % 2 == 0] *= 0.5
    canvas[ry0:ry1, rx0:rx1] = slab


def render_view(obj: ObjectClass | None, view: ViewRanges, rng: np.random.Generator, width: int, height: int,
                ) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Render one image of ``obj`` (or clutter only when ``obj`` is None).

    Returns an (height, width, 3) uint8 array and the object's box (x1, y1, x2, y2) in pixels before occlusion
    (None without an object or when it left the frame).
    """
    ss = SUPERSAMPLE
    h, w = height * ss, width * ss
    side = min(h, w)
    canvas = _background(rng, h, w)
    for _ in range(int(rng.integers(view.clutter[0], view.clutter[1] + 1))):
        part = dataclasses.replace(random_part(rng, 0.0), cx=0.0, cy=0.0)
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        draw_part(canvas, part, centre, _rotation(rng.uniform(0, np.pi)) * side * rng.uniform(0.05, 0.2))
    box = None
    if obj is not None:
        theta = np.deg2rad(rng.uniform(-view.rotation_deg, view.rotation_deg))
        log_stretch = rng.uniform(-view.stretch, view.stretch) / 2
        flip = -1.0 if view.flip and rng.uniform() < 0.5 else 1.0
        shear = np.array([[1.0, rng.uniform(-view.shear, view.shear)], [0.0, 1.0]])
        stretch = np.diag([flip * np.exp(log_stretch), np.exp(-log_stretch)])
        linear = _rotation(theta) @ shear @ stretch * (rng.uniform(*view.scale) * side / 2)
        centre = np.array([w / 2 + rng.uniform(-view.shift, view.shift) * w,
                           h / 2 + rng.uniform(-view.shift, view.shift) * h])
        cover = np.zeros((h, w), dtype=bool)
        for part in obj.parts:
            draw_part(canvas, _jittered(part, view, rng), centre, linear, cover)
        cols, rows = np.flatnonzero(cover.any(0)), np.flatnonzero(cover.any(1))
        if cols.size:
            pix = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            box = tuple(v / ss for v in pix)
            if rng.uniform() < view.occlusion_prob:
                _occlude(canvas, pix, rng.uniform(*view.occlusion), rng)
    # Illumination: colour cast, contrast and brightness, and a ramp across the image.
    canvas *= rng.uniform(1 - view.color_cast, 1 + view.color_cast, 3).astype(np.float32)
    mean = canvas.mean()
    canvas = (canvas - mean) * rng.uniform(*view.contrast) + mean + rng.uniform(-view.brightness, view.brightness)
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(phi) * (np.arange(w)[None, :] / w - 0.5) + np.sin(phi) * (np.arange(h)[:, None] / h - 0.5))
    canvas *= (1 + rng.uniform(0, view.light_gradient) * ramp)[..., None].astype(np.float32)
    img = canvas.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
    img += rng.normal(0, view.noise, img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), box
