"""Procedurally generated "shapes" scenes.

Every scene is a pure function of ``(seed, split, index, image_size)``: it is
drawn from ``np.random.default_rng([seed, split_number, index])``, so any scene
can be regenerated on its own, in any order, and the three splits use
different random streams.

A scene is a noisy, low-contrast, greyish background with one to three
objects painted on it:

* exactly one *main* object, ``size == "large"``, drawn last (on top), fully
  inside the image; the classification label is its ``"<colour> <shape>"``;
* zero to two *small* objects drawn before it, which the main object (and each
  other) may partly hide.

Each scene comes with an image, a label, a per-pixel mask of object kinds and
several English captions, which makes the data usable for classification,
segmentation, captioning, pix2pix (image <-> mask) and text-to-image.

Only numpy and the standard library are used.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "COLOURS",
    "MASK_CLASS_NAMES",
    "MASK_COLOURS",
    "SHAPES",
    "SPLITS",
    "ShapeObject",
    "describe",
    "generate_arrays",
    "generate_scene",
    "object_mask",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (35, 200, 55),
    "blue": (45, 85, 235),
    "yellow": (240, 220, 35),
    "magenta": (220, 45, 220),
    "cyan": (35, 215, 220),
}

SPLITS: tuple[str, ...] = ("train", "validation", "test")

_COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

CLASS_NAMES: tuple[str, ...] = tuple(
    f"{colour} {shape}" for colour in _COLOUR_NAMES for shape in SHAPES
)

MASK_CLASS_NAMES: tuple[str, ...] = ("background",) + SHAPES

MASK_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # background
    (230, 25, 75),  # circle
    (60, 180, 75),  # square
    (0, 130, 200),  # triangle
    (255, 225, 25),  # cross
)

MIN_IMAGE_SIZE = 16
MAX_SMALL_OBJECTS = 2

# Object geometry, as fractions of the image size.
_LARGE_RADIUS = (0.22, 0.30)
_SMALL_RADIUS = (0.09, 0.14)
# Colour handling.
_BRIGHTNESS = (0.82, 1.05)  # per-object multiplicative jitter of the palette colour
_OBJECT_NOISE = 7.0  # std of per-pixel noise on objects
# Background (grey levels), deliberately darkish and low in chroma.
_BG_BASE = (40.0, 105.0)
_BG_TINT = 12.0
_BG_GRADIENT = (10.0, 35.0)
_BG_STRIPES = (0.0, 12.0)
_BG_STRIPE_CYCLES = (1.5, 6.0)
_BG_NOISE = (5.0, 12.0)
# Rejection sampling of small-object positions.
_CANDIDATES = 24

# Geometry constants of the shapes, relative to the radius (half-extent).
_SQUARE_HALF = 0.85
_TRIANGLE_HALF_HEIGHT = 0.9
_CROSS_HALF_WIDTH = 0.33


@dataclasses.dataclass(frozen=True)
class ShapeObject:
    """One painted object of a scene.

    ``center`` is ``(x, y)`` in pixels (x to the right, y downwards, pixel
    ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``); ``radius`` is
    the object's half-extent in pixels: the shape fits in the square
    ``center +- radius``.  ``rgb`` is the object's jittered fill colour (before
    per-pixel noise).
    """

    shape: str
    colour: str
    size: str  # "small" | "large"
    center: tuple[float, float]
    radius: float
    rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def shape_index(self) -> int:
        return SHAPES.index(self.shape)

    @property
    def colour_index(self) -> int:
        return _COLOUR_NAMES.index(self.colour)

    @property
    def class_index(self) -> int:
        """Index into ``CLASS_NAMES`` (the classification label)."""
        return self.colour_index * len(SHAPES) + self.shape_index

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_index]

    @property
    def mask_class(self) -> int:
        """Index into ``MASK_CLASS_NAMES`` (1 + shape index)."""
        return 1 + self.shape_index

    @property
    def is_main(self) -> bool:
        return self.size == "large"


# --------------------------------------------------------------------------- #
# Geometry
# --------------------------------------------------------------------------- #


def _shape_mask(shape_index: int, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask; ``dx`` is a row vector (1, w), ``dy`` a column (h, 1)."""
    if shape_index == 0:  # circle
        return dx * dx + dy * dy <= r * r
    if shape_index == 1:  # square
        h = _SQUARE_HALF * r
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape_index == 2:  # triangle, apex up, base at the bottom
        t = _TRIANGLE_HALF_HEIGHT * r
        # half-width grows linearly from 0 at the apex (dy = -t) to r at the base (dy = t)
        return (np.abs(dx) * (2.0 * t) <= (dy + t) * r) & (dy <= t)
    if shape_index == 3:  # cross ("+")
        w = _CROSS_HALF_WIDTH * r
        adx, ady = np.abs(dx), np.abs(dy)
        return ((adx <= r) & (ady <= w)) | ((adx <= w) & (ady <= r))
    raise ValueError(f"unknown shape index {shape_index}")


def _bbox(center: tuple[float, float], r: float, size: int) -> tuple[int, int, int, int]:
    cx, cy = center
    x0 = max(0, int(math.floor(cx - r - 1)))
    x1 = min(size, int(math.ceil(cx + r + 1)))
    y0 = max(0, int(math.floor(cy - r - 1)))
    y1 = min(size, int(math.ceil(cy + r + 1)))
    return x0, x1, y0, y1


@functools.lru_cache(maxsize=16)
def _pixel_centres(size: int) -> np.ndarray:
    c = np.arange(size, dtype=np.float64) + 0.5
    c.setflags(write=False)
    return c


def _object_patch(obj: ShapeObject, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    x0, x1, y0, y1 = _bbox(obj.center, obj.radius, size)
    c = _pixel_centres(size)
    dx = (c[x0:x1] - obj.center[0])[None, :]
    dy = (c[y0:y1] - obj.center[1])[:, None]
    return _shape_mask(obj.shape_index, dx, dy, obj.radius), (x0, x1, y0, y1)


def object_mask(obj: ShapeObject, image_size: int) -> np.ndarray:
    """Boolean ``[H, W]`` mask of the pixels covered by ``obj`` (ignoring occlusion)."""
    out = np.zeros((image_size, image_size), dtype=bool)
    patch, (x0, x1, y0, y1) = _object_patch(obj, image_size)
    out[y0:y1, x0:x1] = patch
    return out


# --------------------------------------------------------------------------- #
# Captions
# --------------------------------------------------------------------------- #


def _relation(a: ShapeObject, b: ShapeObject) -> str:
    """Where ``a`` is relative to ``b`` (dominant axis of the centre offset)."""
    dx = a.center[0] - b.center[0]
    dy = a.center[1] - b.center[1]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def _position(obj: ShapeObject, image_size: int) -> str:
    """Rough position of an object in the image, as a phrase."""
    third = image_size / 3.0
    x, y = obj.center
    col = 0 if x < third else (2 if x >= 2 * third else 1)
    row = 0 if y < third else (2 if y >= 2 * third else 1)
    vert = ("top", "middle", "bottom")[row]
    horiz = ("left", "center", "right")[col]
    if row == 1 and col == 1:
        return "in the center"
    if row == 1:
        return f"on the {horiz}"
    if col == 1:
        return f"at the {vert}"
    return f"in the {vert} {horiz}"


def _np(obj: ShapeObject, size_word: str | None = None) -> str:
    """Noun phrase without article, e.g. ``large red circle``."""
    words = [size_word] if size_word else []
    return " ".join(words + [obj.colour, obj.shape])


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def describe(
    objects: Sequence[ShapeObject],
    rng: np.random.Generator | None = None,
    image_size: int | None = None,
) -> list[str]:
    """English reference captions for a scene (at least three, all distinct).

    ``objects`` is in drawing order; the main object is the ``"large"`` one
    (the last one when none is marked large).  With ``rng`` the paraphrase
    choices (``large``/``big``, which small object is related to the main one,
    caption order) are drawn from it; without it they are fixed.  When the main
    object is alone its rough position is described relative to
    ``image_size`` (``64`` when not given).
    """
    objects = list(objects)
    if not objects:
        raise ValueError("describe() needs at least one object")
    mains = [o for o in objects if o.size == "large"]
    main = mains[-1] if mains else objects[-1]
    others = [o for o in objects if o is not main]

    if rng is not None:
        u = rng.random(4)
    else:
        u = np.array([0.0, 0.75, 0.0, 0.0])
    big_a, big_b = ("large", "big") if u[0] < 0.5 else ("big", "large")

    m_big = _np(main, big_a)
    m_big2 = _np(main, big_b)
    m_plain = _np(main)
    caps: list[str] = []

    if not others:
        pos = _position(main, image_size or 64)
        caps = [
            f"{_article(m_big)} {pos}",
            f"there is {_article(m_big2)} {pos}",
            f"{_article(m_plain)} on its own {pos}",
            f"a single {m_big2} and nothing else",
            f"the image shows one {m_plain} {pos}",
        ]
    else:
        other = others[int(u[1] * len(others)) % len(others)] if rng is not None else others[-1]
        o_small = _np(other, "small")
        rel = _relation(main, other)
        inv = _relation(other, main)
        caps = [
            f"{_article(m_big)} {rel} {_article(o_small)}",
            f"{_article(o_small)} {inv} {_article(m_big2)}",
            f"the {m_big} is {rel} the {o_small}",
        ]
        if len(others) == 1:
            caps.append(f"there is {_article(m_plain)} and {_article(_np(other))}")
            caps.append(f"two shapes {_article(m_big2)} and {_article(o_small)}")
        else:
            smalls = " and ".join(_article(_np(o, "small")) for o in others)
            plain = " and ".join(_article(_np(o)) for o in others)
            caps.append(f"there is {_article(m_plain)} and {plain}")
            caps.append(f"{_article(m_big2)} with {smalls}")
            caps.append(f"{_article(m_big)} and two small shapes")

    # Drop accidental duplicates while keeping order.
    seen: set[str] = set()
    caps = [c for c in caps if not (c in seen or seen.add(c))]
    if rng is not None:
        order = rng.permutation(len(caps))
        caps = [caps[i] for i in order]
    return caps


# --------------------------------------------------------------------------- #
# Scene sampling and rendering
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=1)
def _gauss_lut() -> np.ndarray:
    """Standard-normal quantiles of 256 equiprobable bins: byte -> N(0, 1) value."""
    nd = statistics.NormalDist()
    lut = np.array([nd.inv_cdf((k + 0.5) / 256.0) for k in range(256)], dtype=np.float32)
    lut /= lut.std()
    lut.setflags(write=False)
    return lut


def _check_args(split: str, index: int, image_size: int) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if int(index) != index or index < 0:
        raise ValueError(f"scene index must be a non-negative integer, got {index!r}")
    if int(image_size) != image_size or image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
    return SPLITS.index(split)


def _lerp(u: float, lo_hi: tuple[float, float]) -> float:
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * float(u)


def _make_object(
    shape_u: float, colour_u: float, bright_u: float, size: str, center: tuple[float, float], radius: float
) -> ShapeObject:
    shape = SHAPES[min(int(shape_u * len(SHAPES)), len(SHAPES) - 1)]
    colour = _COLOUR_NAMES[min(int(colour_u * len(_COLOUR_NAMES)), len(_COLOUR_NAMES) - 1)]
    b = _lerp(bright_u, _BRIGHTNESS)
    rgb = tuple(float(min(255.0, v * b)) for v in COLOURS[colour])
    return ShapeObject(shape=shape, colour=colour, size=size, center=center, radius=radius, rgb=rgb)


def _sample_objects(rng: np.random.Generator, size: int) -> list[ShapeObject]:
    # Fixed number of draws, whatever the scene, so the stream layout is stable.
    u = rng.random(6 + 4 * MAX_SMALL_OBJECTS + 1)
    cand = rng.random((MAX_SMALL_OBJECTS, _CANDIDATES, 2))

    R = _lerp(u[0], _LARGE_RADIUS) * size
    lo, hi = R + 1.0, size - 1.0 - R  # fully inside, with a one pixel margin
    main_center = (_lerp(u[1], (lo, hi)), _lerp(u[2], (lo, hi)))
    main = _make_object(u[3], u[4], u[5], "large", main_center, R)

    n_small = min(int(u[-1] * (MAX_SMALL_OBJECTS + 1)), MAX_SMALL_OBJECTS)
    smalls: list[ShapeObject] = []
    for k in range(n_small):
        su = u[6 + 4 * k : 10 + 4 * k]
        r = _lerp(su[0], _SMALL_RADIUS) * size
        # Candidate centres keep the object inside the image.
        xy = r + cand[k] * (size - 2.0 * r)
        # Keep a visible part: the centre lies outside the main object's box
        # (grown a little), and not on top of an earlier small object.
        ok = np.maximum(np.abs(xy[:, 0] - main_center[0]), np.abs(xy[:, 1] - main_center[1])) >= R + 0.3 * r
        for s in smalls:
            d = np.maximum(np.abs(xy[:, 0] - s.center[0]), np.abs(xy[:, 1] - s.center[1]))
            ok &= d >= 0.9 * max(r, s.radius)
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            continue
        cx, cy = xy[hits[0]]
        smalls.append(_make_object(su[1], su[2], su[3], "small", (float(cx), float(cy)), float(r)))
    return smalls + [main]


def _render_background(rng: np.random.Generator, size: int, out: np.ndarray) -> float:
    """Write the background into float32 ``out`` [H, W, 3]; returns the noise std."""
    u = rng.random(10)
    c = _pixel_centres(size) / size - 0.5  # in [-0.5, 0.5)
    base = _lerp(u[0], _BG_BASE)
    tint = (u[1:4] * 2.0 - 1.0) * _BG_TINT
    # Linear gradient along a random direction.
    th = u[4] * 2.0 * math.pi
    amp = _lerp(u[5], _BG_GRADIENT)
    gx = (amp * math.cos(th)) * c
    gy = (amp * math.sin(th)) * c
    # Stripes: sin(a x + b y + p) = sin(ax + p) cos(by) + cos(ax + p) sin(by).
    ph = u[6] * 2.0 * math.pi
    k = 2.0 * math.pi * _lerp(u[7], _BG_STRIPE_CYCLES)
    s_amp = _lerp(u[8], _BG_STRIPES)
    ax = k * math.cos(ph) * c + u[9] * 2.0 * math.pi
    by = k * math.sin(ph) * c
    plane = (
        base
        + gy[:, None]
        + gx[None, :]
        + s_amp * (np.cos(by)[:, None] * np.sin(ax)[None, :] + np.sin(by)[:, None] * np.cos(ax)[None, :])
    )
    out[...] = plane.astype(np.float32)[:, :, None]
    out += tint.astype(np.float32)
    return _lerp(rng.random(), _BG_NOISE)


def _render_scene(
    split_number: int, index: int, seed: int, size: int, image_out: np.ndarray, mask_out: np.ndarray
) -> tuple[int, list[str], list[ShapeObject]]:
    """Render one scene into ``image_out`` (uint8 [H,W,3]) and ``mask_out`` (uint8 [H,W])."""
    rng = np.random.default_rng([int(seed), split_number, int(index)])
    objects = _sample_objects(rng, size)
    img = np.empty((size, size, 3), dtype=np.float32)
    bg_sigma = _render_background(rng, size, img)
    noise = _gauss_lut()[np.frombuffer(rng.bytes(size * size * 3), dtype=np.uint8)].reshape(size, size, 3)
    img += bg_sigma * noise
    mask_out[...] = 0
    obj_noise = _OBJECT_NOISE * noise
    for obj in objects:
        patch, (x0, x1, y0, y1) = _object_patch(obj, size)
        region = img[y0:y1, x0:x1]
        fill = np.asarray(obj.rgb, dtype=np.float32) + obj_noise[y0:y1, x0:x1]
        np.copyto(region, fill, where=patch[:, :, None])
        mask_out[y0:y1, x0:x1][patch] = obj.mask_class
    np.clip(img, 0.0, 255.0, out=img)
    img += 0.5
    image_out[...] = img  # float -> uint8 truncation (rounded by the +0.5)
    captions = describe(objects, rng=rng, image_size=size)
    return objects[-1].class_index, captions, objects


def generate_scene(index: int, split: str = "train", seed: int = 0, image_size: int = 64) -> dict:
    """Generate one scene.

    Returns a dict with ``image`` (uint8 ``[H, W, 3]``), ``label`` (int, index
    into ``CLASS_NAMES`` of the main object), ``mask`` (uint8 ``[H, W]``, ids
    into ``MASK_CLASS_NAMES``), ``captions`` (list of at least three strings)
    and ``objects`` (list of ``ShapeObject`` in drawing order; the last one is
    the large main object).
    """
    split_number = _check_args(split, index, image_size)
    image = np.empty((image_size, image_size, 3), dtype=np.uint8)
    mask = np.empty((image_size, image_size), dtype=np.uint8)
    label, captions, objects = _render_scene(split_number, index, seed, image_size, image, mask)
    return {"image": image, "label": int(label), "mask": mask, "captions": captions, "objects": objects}


def generate_arrays(
    split: str, num_examples: int, seed: int = 0, image_size: int = 64, start: int = 0
) -> dict:
    """Generate scenes ``start .. start + num_examples - 1`` of ``split`` as arrays.

    Returns ``image`` (uint8 ``[N, H, W, 3]``), ``label`` (int64 ``[N]``),
    ``mask`` (uint8 ``[N, H, W]``) and ``captions`` (list of N lists of str).
    Scene ``i`` is identical to ``generate_scene(start + i, split, seed, image_size)``.
    """
    split_number = _check_args(split, start, image_size)
    if int(num_examples) != num_examples or num_examples < 0:
        raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}")
    n = int(num_examples)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    masks = np.empty((n, image_size, image_size), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    captions: list[list[str]] = []
    for i in range(n):
        label, caps, _ = _render_scene(split_number, start + i, seed, image_size, images[i], masks[i])
        labels[i] = label
        captions.append(caps)
    return {"image": images, "label": labels, "mask": masks, "captions": captions}
