"""Procedural images: product shots (colour, silhouette, texture, brand mark) and social scenes
dominated by a user's favourite colours and styles. Each image draws from its own seed."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from recsys.data.synthetic.patterns import pattern_mask
from recsys.data.synthetic.shapes import MARK_ANCHOR, SILHOUETTES, transform

RGB = tuple[int, int, int]
_SS = 2  # supersampling factor (anti-aliasing)
_PNG_LEVEL = 3  # zlib level: noisy pixels barely compress further, level 3 is several times faster


@dataclass(frozen=True)
class ItemImage:
    """A product shot: one garment on a colour-tinted background."""

    path: str
    size: int
    seed: tuple[int, ...]
    shape: str
    rgb: RGB
    pattern: str
    brand: int


@dataclass(frozen=True)
class SceneImage:
    """A social post: garments and clutter whose colours/styles follow the user's taste."""

    path: str
    size: int
    seed: tuple[int, ...]
    colour_p: tuple[float, ...]
    style_p: tuple[float, ...]
    palette: tuple[RGB, ...]
    patterns: tuple[str, ...]  # pattern of each style
    shapes: tuple[str, ...]


def render(spec: ItemImage | SceneImage) -> np.ndarray:
    """(size, size, 3) uint8 pixels of one image."""
    rng = np.random.default_rng(list(spec.seed))
    n = spec.size * _SS
    canvas = (
        _item_canvas(spec, rng, n) if isinstance(spec, ItemImage) else _scene_canvas(spec, rng, n)
    )
    big = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    small = _lighting(np.asarray(big.reduce(_SS), dtype=np.float32), rng)
    small *= rng.uniform(0.96, 1.04, 3).astype(np.float32)  # white balance
    return np.clip(np.round(small), 0, 255).astype(np.uint8)


def save_png(pixels: np.ndarray, path: str) -> None:
    Image.fromarray(pixels).save(path, format="PNG", compress_level=_PNG_LEVEL)


def _item_canvas(spec: ItemImage, rng: np.random.Generator, n: int) -> np.ndarray:
    rgb = np.asarray(spec.rgb, dtype=np.float64)
    neutral = 235.0 if _luma(rgb) < 150 else 105.0
    bg = 0.3 * rgb + 0.7 * neutral + rng.uniform(-8, 8, 3)
    canvas = np.empty((n, n, 3), dtype=np.float32)
    canvas[:] = bg
    _draw_garment(
        canvas, rng, spec.shape, rgb, spec.pattern,
        scale=rng.uniform(0.85, 1.05), angle=rng.uniform(-12, 12),
        shift=(rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)),
        mark=_brand_colour(spec.brand), mark_kind=spec.brand % 3,
    )
    return canvas


def _scene_canvas(spec: SceneImage, rng: np.random.Generator, n: int) -> np.ndarray:
    palette = np.asarray(spec.palette, dtype=np.float64)
    cp = np.asarray(spec.colour_p) / np.sum(spec.colour_p)
    sp = np.asarray(spec.style_p) / np.sum(spec.style_p)
    sky, floor = palette[rng.choice(len(cp), 2, p=cp)]
    horizon = int(n * rng.uniform(0.55, 0.75))
    canvas = np.empty((n, n, 3), dtype=np.float32)
    canvas[:horizon] = 0.75 * sky + 0.25 * 240.0
    canvas[horizon:] = 0.8 * floor + 0.2 * 110.0
    for _ in range(rng.integers(0, 3)):  # clutter in any colour: noise
        _draw_blob(canvas, rng, palette[rng.integers(len(palette))])
    for _ in range(rng.integers(2, 5)):
        shape = spec.shapes[rng.integers(len(spec.shapes))]
        colour = palette[rng.choice(len(cp), p=cp)]
        pattern = spec.patterns[rng.choice(len(sp), p=sp)]
        _draw_garment(
            canvas, rng, shape, colour, pattern,
            scale=rng.uniform(0.4, 0.65), angle=rng.uniform(-20, 20),
            shift=(rng.uniform(-0.28, 0.28), rng.uniform(-0.28, 0.28)),
            mark=None, mark_kind=0,
        )
    return canvas


def _draw_garment(
    canvas: np.ndarray,
    rng: np.random.Generator,
    shape: str,
    rgb: np.ndarray,
    pattern: str,
    *,
    scale: float,
    angle: float,
    shift: tuple[float, float],
    mark: np.ndarray | None,
    mark_kind: int,
) -> None:
    n = canvas.shape[0]
    fill = Image.new("L", (n, n), 0)
    edge = Image.new("L", (n, n), 0)
    draw_fill, draw_edge = ImageDraw.Draw(fill), ImageDraw.Draw(edge)
    width = max(1, round(n * scale / 64))
    for poly in SILHOUETTES[shape]:
        pts = transform(poly, scale, angle, shift, n)
        draw_fill.polygon(pts, fill=255)
        draw_edge.line([*pts, pts[0]], fill=255, width=width, joint="curve")
    inside = np.asarray(fill) > 127
    period = max(n * scale * rng.uniform(0.09, 0.13), 6.0 * _SS)  # >= 6 output pixels
    tex = pattern_mask(pattern, n, period, angle + rng.uniform(-5, 5),
                       (rng.random(), rng.random()))
    contrast = _contrast(rgb)
    canvas[inside] = rgb
    canvas[inside & tex] = contrast
    canvas[np.asarray(edge) > 127] = 0.7 * rgb
    if mark is not None:
        cx, cy = MARK_ANCHOR[shape]
        (mx, my), = transform(np.array([[cx, cy]]), scale, angle, shift, n)
        r = n * scale * 0.045
        box = [mx - r, my - r, mx + r, my + r]
        layer = Image.new("L", (n, n), 0)
        d = ImageDraw.Draw(layer)
        if mark_kind == 0:
            d.rectangle(box, fill=255)
        elif mark_kind == 1:
            d.ellipse(box, fill=255)
        else:
            d.polygon([(mx, my - r), (mx + r, my + r), (mx - r, my + r)], fill=255)
        canvas[np.asarray(layer) > 127] = mark


def _draw_blob(canvas: np.ndarray, rng: np.random.Generator, rgb: np.ndarray) -> None:
    n = canvas.shape[0]
    layer = Image.new("L", (n, n), 0)
    cx, cy = rng.uniform(0, n, 2)
    rx, ry = rng.uniform(0.05, 0.15, 2) * n
    ImageDraw.Draw(layer).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    canvas[np.asarray(layer) > 127] = rgb


def _lighting(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global brightness and a soft linear light gradient in a random direction."""
    n = canvas.shape[0]
    a = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-0.5, 0.5, n, dtype=np.float32)
    strength = rng.uniform(0.0, 0.2)
    grad = 1.0 + strength * (ramp[None, :] * np.cos(a) + ramp[:, None] * np.sin(a))
    return canvas * (np.float32(rng.uniform(0.92, 1.08)) * grad)[:, :, None]


def _luma(rgb: np.ndarray) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _contrast(rgb: np.ndarray) -> np.ndarray:
    """Pattern colour: charcoal on light garments, off-white on dark ones (the hue stays the
    garment's own, the texture stays visible)."""
    if _luma(rgb) >= 120:
        return np.array([45.0, 45.0, 50.0])
    return np.array([236.0, 236.0, 230.0])


def _brand_colour(brand: int) -> np.ndarray:
    """Distinct mark colour per brand (golden-ratio hue steps, alternating brightness)."""
    r, g, b = colorsys.hsv_to_rgb((brand * 0.618034) % 1.0, 0.9, 0.95 if brand % 2 else 0.55)
    return np.array([r, g, b]) * 255.0
