"""Surface textures per style: boolean masks of where the contrast colour shows (at most ~30%)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def pattern_mask(
    name: str, size: int, period: float, angle_deg: float, phase: tuple[float, float]
) -> np.ndarray:
    """(size, size) bool mask of the pattern ``name`` with the given period (pixels) and angle."""
    if name == "plain":
        return np.zeros((size, size), dtype=bool)
    yy, xx = _grid(size)
    a = np.deg2rad(angle_deg)
    c, s = np.float32(np.cos(a) / period), np.float32(np.sin(a) / period)
    u = xx * c + yy * s + np.float32(phase[0])
    v = yy * c - xx * s + np.float32(phase[1])
    if name == "stripes":
        return _frac(v) < 0.3
    if name == "dots":
        du, dv = _frac(u) - 0.5, _frac(v) - 0.5
        return du**2 + dv**2 < 0.28**2
    if name == "checks":
        return (_frac(u) < 0.16) | (_frac(v) < 0.16)
    if name == "zigzag":
        tri = np.abs(_frac(u * 0.5) - 0.5)  # triangle wave in [0, 0.5]
        return _frac(v + 1.2 * tri) < 0.3
    if name == "diagonal":
        return _frac((u + v) * np.float32(np.sqrt(0.5))) < 0.3
    raise ValueError(f"unknown pattern {name!r}")
