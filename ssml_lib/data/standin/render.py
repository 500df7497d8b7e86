"""Render one view of a procedural object in its habitat: pose, per-image light jitter, occluders, noise.

Pure NumPy on a 2x supersampled canvas (then box-filtered), so the output depends only on the inputs and the
generator state. Coordinates: x to the right, y down, pixel centres at +0.5.

What an image shares and what is its own (see :mod:`.habitats` for why): the surroundings' statistics and
the light come from the habitat the image draws from its dataset's pool; the object's pose, the texture
phases and clutter positions, a small light jitter, an occluder's placement and the pixel noise are the
image's own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .classes import ObjectClass, Part, random_color
from .habitats import Habitat, HabitatPool, apply_light, paint_background, paint_clutter
from .shapes import shape_mask

SUPERSAMPLE = 2


@dataclass(frozen=True)
class ViewRanges:
    """Ranges the per-image draws come from (uniformly unless said otherwise)."""

    rotation_deg: float  # |rotation| at most this
    scale: tuple[float, float]  # object diameter / shorter image side
    shear: float
    stretch: float  # anisotropic scaling, |log(sx / sy)| at most this
    shift: float  # object centre offset, fraction of each image side
    flip: bool  # mirror half of the views
    part_jitter: float  # per-part offset (object units), the object is not rigid
    color_jitter: float
    light_jitter: float  # per-image jitter of the habitat's light, as a fraction of its ranges
    occlusion_prob: float
    occlusion: tuple[float, float]  # fraction of the object box an occluder covers
    noise: float  # pixel noise standard deviation (0-1 scale)


VIEWS: dict[str, ViewRanges] = {
    # Metric-learning sets and the source classes: strong intra-class variation of pose.
    "dml": ViewRanges(40, (0.55, 0.95), 0.25, 0.25, 0.12, True, 0.05, 0.06, 0.2, 0.4, (0.1, 0.35), 0.03),
    # Landmark training photos: the landmark fills more of the frame.
    "landmark": ViewRanges(25, (0.7, 1.1), 0.2, 0.2, 0.1, True, 0.04, 0.05, 0.2, 0.3, (0.1, 0.3), 0.03),
    # Revisited retrieval: easy = clear views, hard = strongly transformed or occluded, junk = mostly hidden.
    "easy": ViewRanges(12, (0.6, 0.85), 0.08, 0.08, 0.12, False, 0.02, 0.03, 0.1, 0.0, (0.0, 0.0), 0.01),
    "hard": ViewRanges(70, (0.35, 0.7), 0.35, 0.35, 0.22, True, 0.06, 0.1, 0.4, 0.7, (0.2, 0.4), 0.04),
    "junk": ViewRanges(90, (0.25, 0.5), 0.35, 0.35, 0.25, True, 0.08, 0.12, 0.5, 1.0, (0.6, 0.8), 0.05),
    # Queries: a clear, smaller view with context around it (the query box excludes the context).
    "query": ViewRanges(10, (0.4, 0.6), 0.05, 0.05, 0.15, False, 0.02, 0.03, 0.1, 0.0, (0.0, 0.0), 0.01),
}


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


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
    mask = shape_mask(part.shape, u, v, part.aspect)
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


def _posed_parts(obj: ObjectClass, view: ViewRanges, rng: np.random.Generator) -> list[Part]:
    free = random_color(rng) if obj.free_colour_part is not None else None
    parts = []
    for i, part in enumerate(obj.parts):
        base = np.asarray(free if i == obj.free_colour_part else part.color)
        colour = np.clip(base + rng.normal(0, view.color_jitter, 3), 0.0, 1.0)
        parts.append(dataclasses.replace(
            part, cx=part.cx + float(rng.normal(0, view.part_jitter)), cy=part.cy + float(rng.normal(0, view.part_jitter)),
            angle=part.angle + float(rng.normal(0, 2 * view.part_jitter)), color=tuple(float(c) for c in colour)))
    return parts


def _occlude(canvas: np.ndarray, box: tuple[int, int, int, int], fraction: float, rng: np.random.Generator,
             hab: Habitat) -> None:
    """Cover ``fraction`` of the object box from a random side with a slab in one of the habitat's colours."""
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
    colour = np.asarray(hab.palette[int(rng.integers(len(hab.palette)))], dtype=np.float32) * 0.8
    slab = np.broadcast_to(colour, (ry1 - ry0, rx1 - rx0, 3)).copy()
    if hab.index % 2:  # striped in half of the habitats, so occluders are not always flat colour
        period = 3 + hab.index % 5
        slab[(np.arange(ry0, ry1)[:, None] + np.arange(rx0, rx1)[None, :]) // period % 2 == 0] *= 0.5
    canvas[ry0:ry1, rx0:rx1] = slab


def render_view(obj: ObjectClass | None, view: ViewRanges, rng: np.random.Generator, width: int, height: int,
                habitats: HabitatPool, *, habitat: Optional[Habitat] = None,
                pose_rng: Optional[np.random.Generator] = None,
                ) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Render one image of ``obj`` (or its surroundings only when ``obj`` is None).

    The habitat is drawn from ``habitats`` with ``rng`` unless given. ``pose_rng`` (default ``rng``) draws the
    object's pose and appearance jitter alone, so a diagnostic can keep the pose and change the rest.
    Returns an (height, width, 3) uint8 array and the object's box (x1, y1, x2, y2) in pixels before
    occlusion (None without an object or when it left the frame).
    """
    ss = SUPERSAMPLE
    h, w = height * ss, width * ss
    side = min(h, w)
    hab = habitat if habitat is not None else habitats.draw(rng)
    canvas = paint_background(hab, rng, h, w)
    paint_clutter(canvas, hab, rng, draw_part)
    box = None
    if obj is not None:
        prng = pose_rng if pose_rng is not None else rng
        theta = np.deg2rad(prng.uniform(-view.rotation_deg, view.rotation_deg))
        log_stretch = prng.uniform(-view.stretch, view.stretch) / 2
        flip = -1.0 if view.flip and prng.uniform() < 0.5 else 1.0
        shear = np.array([[1.0, prng.uniform(-view.shear, view.shear)], [0.0, 1.0]])
        stretch = np.diag([flip * np.exp(log_stretch), np.exp(-log_stretch)])
        linear = _rotation(theta) @ shear @ stretch * (prng.uniform(*view.scale) * side / 2)
        centre = np.array([w / 2 + prng.uniform(-view.shift, view.shift) * w,
                           h / 2 + prng.uniform(-view.shift, view.shift) * h])
        cover = np.zeros((h, w), dtype=bool)
        for part in _posed_parts(obj, view, prng):
            draw_part(canvas, part, centre, linear, cover)
        cols, rows = np.flatnonzero(cover.any(0)), np.flatnonzero(cover.any(1))
        if cols.size:
            pix = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            box = tuple(v / ss for v in pix)
            if rng.uniform() < view.occlusion_prob:
                _occlude(canvas, pix, rng.uniform(*view.occlusion), rng, hab)
    canvas = apply_light(canvas, hab, rng, view.light_jitter)
    img = canvas.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
    img += rng.normal(0, view.noise, img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), box
