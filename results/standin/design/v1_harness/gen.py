"""Prototype stand-in generator variants for the design probe (scratch, not the repo)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ssml_lib.data.standin.classes import PATTERNS, SHAPES, ObjectClass, Part, random_color, random_part, stable_rng
from ssml_lib.data.standin import render as _render
from ssml_lib.data.standin.render import SUPERSAMPLE, _occlude, _rotation, draw_part

_base_mask = _render._shape_mask


def _mask(shape, u, v, aspect):
    if shape == "star":
        ang = np.arctan2(v, u)
        r = np.sqrt(u * u + v * v)
        return r <= 0.55 + 0.45 * np.abs(np.cos(2.5 * ang))
    if shape == "hexagon":
        au, av = np.abs(u), np.abs(v)
        return (av <= 0.866) & (0.866 * au + 0.5 * av <= 0.866)
    if shape == "crescent":
        return (u * u + v * v <= 1.0) & ((u - 0.45) ** 2 + v * v > 0.6)
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / max(aspect * 1.8, 0.3)) ** 2 <= 1.0
    if shape == "diamond":
        return np.abs(u) + np.abs(v) / 0.7 <= 1.0
    if shape == "chevron":
        return (np.abs(v - 0.6 * np.abs(u)) <= aspect) & (np.abs(u) <= 1.0)
    return _base_mask(shape, u, v, aspect)


_render._shape_mask = _mask
SOURCE_SHAPES = ("star", "hexagon", "crescent", "ellipse", "diamond", "chevron")


@dataclass(frozen=True)
class Regime:
    # nuisances: "image" = drawn per image (unique), "scene" = from the shared scene pool, "off" = none
    background: str = "image"
    clutter: str = "image"
    lighting: str = "image"
    occluder: str = "image"     # occluder colour/pattern source; placement is always per image
    scenes: int = 30
    light_jitter: float = 0.0   # per-image jitter on top of scene lighting (fraction of the ranges)
    # ranges (today's "dml" values)
    rotation_deg: float = 40
    scale: tuple = (0.55, 0.95)
    shear: float = 0.25
    stretch: float = 0.25
    shift: float = 0.12
    flip: bool = True
    part_jitter: float = 0.05
    color_jitter: float = 0.06
    brightness: float = 0.15
    contrast: tuple = (0.6, 1.2)
    color_cast: float = 0.2
    light_gradient: float = 0.3
    clutter_n: tuple = (2, 7)
    occlusion_prob: float = 0.5
    occlusion: tuple = (0.1, 0.4)
    noise: float = 0.03
    # class structure
    families: int = 0           # 0: independent classes (today); >0: classes share a family body plan
    varied_parts: int = 2       # parts whose colour/pattern a class redraws from its family
    geometry_nudge: float = 0.06
    namespace_shapes: tuple = SHAPES
    parts: tuple = (3, 5)       # parts per class (inclusive), independent classes
    bg_style: str = "gradient"  # or "blobs"
    grating_freq: tuple = (5.0, 14.0)
    habitat_clutter: tuple = (8, 20)
    habitat_clutter_size: tuple = (0.03, 0.07)
    habitat_style: str = "gratings"


def family_class(ns: str, number: int, regime: Regime) -> ObjectClass:
    if regime.families == 0:
        rng = stable_rng("class", ns, number)
        parts = tuple(_part(rng, regime.namespace_shapes) for _ in range(int(rng.integers(regime.parts[0], regime.parts[1] + 1))))
        return ObjectClass(f"{ns}/{number}", parts)
    fam = number % regime.families
    frng = stable_rng("family", ns, fam)
    base = tuple(_part(frng, regime.namespace_shapes) for _ in range(int(frng.integers(4, 6))))
    rng = stable_rng("class", ns, number)
    varied = set(rng.choice(len(base), min(regime.varied_parts, len(base)), replace=False).tolist())
    parts = []
    for i, p in enumerate(base):
        p = dataclasses.replace(p, cx=p.cx + float(rng.normal(0, regime.geometry_nudge)),
                                cy=p.cy + float(rng.normal(0, regime.geometry_nudge)),
                                size=p.size * float(rng.uniform(0.85, 1.15)), angle=p.angle + float(rng.normal(0, 0.2)))
        if i in varied:
            p = dataclasses.replace(p, color=random_color(rng), pattern=PATTERNS[rng.integers(len(PATTERNS))])
        parts.append(p)
    return ObjectClass(f"{ns}/{number}", tuple(parts))


def _part(rng, shapes, centre_range=0.55):
    p = random_part(rng, centre_range)
    return dataclasses.replace(p, shape=shapes[rng.integers(len(shapes))])


def background(rng, h, w):
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


def blobs(rng, h, w):
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w
    img = np.zeros((h, w, 3), np.float32) + (0.3 + 0.4 * np.asarray(random_color(rng)) * 0.6).astype(np.float32)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy, sd = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        col = (0.25 + 0.5 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)).astype(np.float32)
        wgt = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sd * sd))[..., None] * rng.uniform(0.3, 0.8)
        img = img * (1 - wgt) + col * wgt
    return img.astype(np.float32)


def habitat(rng, r):
    """A shared habitat: colours, gradient direction, grating frequencies/orientations, clutter palette."""
    c1 = 0.3 + 0.45 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)
    c2 = 0.3 + 0.45 * np.asarray(random_color(rng)) * rng.uniform(0.4, 1.0)
    gratings = [dict(freq=rng.uniform(*r.grating_freq), ori=rng.uniform(0, np.pi), amp=rng.uniform(0.04, 0.1),
                     tint=np.asarray(random_color(rng), np.float32)) for _ in range(int(rng.integers(1, 4)))]
    shapes = tuple(rng.choice(r.namespace_shapes, 2, replace=False).tolist())
    palette = [random_color(rng) for _ in range(3)]
    return dict(c1=c1.astype(np.float32), c2=c2.astype(np.float32), phi=rng.uniform(0, 2 * np.pi), gratings=gratings,
                shapes=shapes, palette=palette, density=int(rng.integers(*r.habitat_clutter)), style=r.habitat_style,
                blob_sd=rng.uniform(0.06, 0.15), grain=rng.uniform(0.02, 0.06))


def habitat_blobs(hab, rng, h, w):
    """Blotchy background: many soft blobs of the habitat's two colours at per-image positions, plus grain."""
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w
    img = np.broadcast_to(hab["c1"], (h, w, 3)).astype(np.float32).copy()
    for _ in range(12):
        cx, cy = rng.uniform(-0.1, 1.1, 2)
        wgt = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * hab["blob_sd"] ** 2))[..., None] * 0.8
        img = img * (1 - wgt) + hab["c2"] * wgt
    return img + rng.normal(0, hab["grain"], (h, w, 1)).astype(np.float32)


def habitat_bg(hab, rng, h, w):
    if hab.get("style") == "blobs":
        return habitat_blobs(hab, rng, h, w)
    ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    t = np.clip(0.5 + 0.6 * (np.cos(hab["phi"]) * xs + np.sin(hab["phi"]) * ys), 0, 1)[..., None]
    img = hab["c1"] * (1 - t) + hab["c2"] * t
    for g in hab["gratings"]:
        arg = 2 * np.pi * g["freq"] * (np.cos(g["ori"]) * xs + np.sin(g["ori"]) * ys) + rng.uniform(0, 2 * np.pi)
        img = img + (g["amp"] * np.sin(arg))[..., None] * g["tint"]
    return img.astype(np.float32)


def habitat_clutter(canvas, hab, rng, r):
    h, w = canvas.shape[:2]
    side = min(h, w)
    for _ in range(hab["density"]):
        p = dataclasses.replace(random_part(rng, 0.0), cx=0.0, cy=0.0, shape=str(rng.choice(hab["shapes"])),
                                color=hab["palette"][int(rng.integers(3))])
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        draw_part(canvas, p, centre, _rotation(rng.uniform(0, np.pi)) * side * rng.uniform(*r.habitat_clutter_size))


def clutter(canvas, rng, r: Regime):
    h, w = canvas.shape[:2]
    side = min(h, w)
    for _ in range(int(rng.integers(r.clutter_n[0], r.clutter_n[1] + 1))):
        part = dataclasses.replace(_part(rng, r.namespace_shapes, 0.0), cx=0.0, cy=0.0)
        centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        draw_part(canvas, part, centre, _rotation(rng.uniform(0, np.pi)) * side * rng.uniform(0.05, 0.2))


def lighting(rng, r: Regime):
    return dict(cast=rng.uniform(1 - r.color_cast, 1 + r.color_cast, 3).astype(np.float32),
                contrast=rng.uniform(*r.contrast), bright=rng.uniform(-r.brightness, r.brightness),
                phi=rng.uniform(0, 2 * np.pi), grad=rng.uniform(0, r.light_gradient))


def jitter_light(L, rng, r: Regime, amount):
    if amount <= 0:
        return L
    return dict(cast=L["cast"] * rng.uniform(1 - amount * r.color_cast, 1 + amount * r.color_cast, 3).astype(np.float32),
                contrast=L["contrast"] * rng.uniform(1 - amount * 0.3, 1 + amount * 0.3),
                bright=L["bright"] + rng.uniform(-amount * r.brightness, amount * r.brightness),
                phi=L["phi"] + rng.normal(0, amount), grad=L["grad"])


class Generator:
    def __init__(self, regime: Regime, ns: str, px: int, seed: int = 0):
        self.r, self.ns, self.px, self.seed = regime, ns, px, seed
        ss = SUPERSAMPLE
        h = w = px * ss
        self.scenes = []
        for s in range(regime.scenes):
            rng = stable_rng("scene", ns, seed, s)
            bg = background(rng, h, w) if regime.bg_style == "gradient" else blobs(rng, h, w)
            if regime.clutter == "scene":
                clutter(bg, rng, regime)
            occ_rng_state = stable_rng("scene-occ", ns, seed, s)
            hab = habitat(stable_rng("habitat", ns, seed, s), regime)
            self.scenes.append(dict(bg=bg, light=lighting(rng, regime), occ_seed=("scene-occ", ns, seed, s), hab=hab))

    def render(self, obj: ObjectClass, key, with_scene: int | None = None, pose_key=None):
        r, ss, px = self.r, SUPERSAMPLE, self.px
        h = w = px * ss
        side = h
        irng = stable_rng("img", self.ns, self.seed, *key)
        scene_id = int(irng.integers(r.scenes)) if with_scene is None else with_scene
        scene = self.scenes[scene_id]
        nrng = stable_rng("nuis", self.ns, self.seed, *key)  # per-image nuisance stream
        if r.background == "scene":
            canvas = scene["bg"].copy()
        elif r.background == "habitat":
            canvas = habitat_bg(scene["hab"], nrng, h, w)
        elif r.background == "image":
            canvas = background(nrng, h, w) if r.bg_style == "gradient" else blobs(nrng, h, w)
        else:
            canvas = np.full((h, w, 3), 0.5, np.float32)
        if r.clutter == "image":
            clutter(canvas, nrng, r)
        elif r.clutter == "habitat":
            habitat_clutter(canvas, scene["hab"], nrng, r)
        prng = stable_rng("pose", self.ns, self.seed, *(pose_key or key))
        theta = np.deg2rad(prng.uniform(-r.rotation_deg, r.rotation_deg))
        log_stretch = prng.uniform(-r.stretch, r.stretch) / 2
        flip = -1.0 if r.flip and prng.uniform() < 0.5 else 1.0
        shear = np.array([[1.0, prng.uniform(-r.shear, r.shear)], [0.0, 1.0]])
        stretch = np.diag([flip * np.exp(log_stretch), np.exp(-log_stretch)])
        linear = _rotation(theta) @ shear @ stretch * (prng.uniform(*r.scale) * side / 2)
        centre = np.array([w / 2 + prng.uniform(-r.shift, r.shift) * w, h / 2 + prng.uniform(-r.shift, r.shift) * h])
        cover = np.zeros((h, w), bool)
        for part in obj.parts:
            colour = np.clip(np.asarray(part.color) + prng.normal(0, r.color_jitter, 3), 0, 1)
            jp = dataclasses.replace(part, cx=part.cx + float(prng.normal(0, r.part_jitter)),
                                     cy=part.cy + float(prng.normal(0, r.part_jitter)),
                                     angle=part.angle + float(prng.normal(0, 2 * r.part_jitter)),
                                     color=tuple(float(c) for c in colour))
            draw_part(canvas, jp, centre, linear, cover)
        cols, rows = np.flatnonzero(cover.any(0)), np.flatnonzero(cover.any(1))
        if cols.size and r.occluder != "off" and nrng.uniform() < r.occlusion_prob:
            pix = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            orng = stable_rng(*scene["occ_seed"]) if r.occluder in ("scene", "habitat") else nrng
            # placement per image, look (colour/pattern) from orng
            _occlude_split(canvas, pix, nrng.uniform(*r.occlusion), nrng, orng)
        if r.lighting == "scene":
            L = jitter_light(scene["light"], nrng, r, r.light_jitter)
        elif r.lighting == "image":
            L = lighting(nrng, r)
        else:
            L = dict(cast=np.ones(3, np.float32), contrast=1.0, bright=0.0, phi=0.0, grad=0.0)
        canvas *= L["cast"]
        mean = canvas.mean()
        canvas = (canvas - mean) * L["contrast"] + mean + L["bright"]
        ramp = (np.cos(L["phi"]) * (np.arange(w)[None, :] / w - 0.5) + np.sin(L["phi"]) * (np.arange(h)[:, None] / h - 0.5))
        canvas *= (1 + L["grad"] * ramp)[..., None].astype(np.float32)
        img = canvas.reshape(px, ss, px, ss, 3).mean(axis=(1, 3))
        img += nrng.normal(0, r.noise, img.shape).astype(np.float32)
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), scene_id


def _occlude_split(canvas, box, fraction, place_rng, look_rng):
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    side = int(place_rng.integers(4))
    ext_w, ext_h = int(place_rng.uniform(0, 0.3) * bw) + 1, int(place_rng.uniform(0, 0.3) * bh) + 1
    if side == 0:
        rr = (x0 - ext_w, y0 - ext_h, x0 + int(round(fraction * bw)), y1 + ext_h)
    elif side == 1:
        rr = (x1 - int(round(fraction * bw)), y0 - ext_h, x1 + ext_w, y1 + ext_h)
    elif side == 2:
        rr = (x0 - ext_w, y0 - ext_h, x1 + ext_w, y0 + int(round(fraction * bh)))
    else:
        rr = (x0 - ext_w, y1 - int(round(fraction * bh)), x1 + ext_w, y1 + ext_h)
    h, w = canvas.shape[:2]
    rx0, ry0, rx1, ry1 = max(0, rr[0]), max(0, rr[1]), min(w, rr[2]), min(h, rr[3])
    if rx0 >= rx1 or ry0 >= ry1:
        return
    colour = np.asarray(random_color(look_rng), dtype=np.float32) * look_rng.uniform(0.5, 1.0)
    slab = np.broadcast_to(colour, (ry1 - ry0, rx1 - rx0, 3)).copy()
    if look_rng.uniform() < 0.5:
        period = max(2, int(look_rng.integers(3, 9)))
        slab[(np.arange(ry0, ry1)[:, None] + np.arange(rx0, rx1)[None, :]) // period % 2 == 0] *= 0.5
    canvas[ry0:ry1, rx0:rx1] = slab


def make_set(regime: Regime, ns: str, classes: range, per_class: int, px: int = 64, seed: int = 0):
    g = Generator(regime, ns, px, seed)
    imgs, labels, scenes = [], [], []
    for c in classes:
        obj = family_class(ns, c, regime)
        for k in range(per_class):
            im, s = g.render(obj, (c, k))
            imgs.append(im); labels.append(c); scenes.append(s)
    return np.stack(imgs), np.asarray(labels), np.asarray(scenes), g
