"""Surface textures per style: boolean masks of where the contrast colour shows (about a third)."""

from __future__ import annotations

import numpy as np


def pattern_mask(
    name: str, size: int, period: float, angle_deg: float, phase: tuple[float, float]
) -> np.ndarray:
    """(size, size) bool mask of the pattern ``name`` with the given period (pixels) and angle."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    a = np.deg2rad(angle_deg)
    u = (xx * np.cos(a) + yy * np.sin(a)) / period + phase[0]
    v = (-xx * np.sin(a) + yy * np.cos(a)) / period + phase[1]
    if name == "plain":
        return np.zeros((size, size), dtype=bool)
    if name == "stripes":
        return np.mod(v, 1.0) < 0.35
    if name == "dots":
        du, dv = np.mod(u, 1.0) - 0.5, np.mod(v, 1.0) - 0.5
        return du**2 + dv**2 < 0.3**2
    if name == "checks":
        return (np.mod(u, 1.0) < 0.2) | (np.mod(v, 1.0) < 0.2)
    if name == "zigzag":
        tri = np.abs(np.mod(u * 0.5, 1.0) - 0.5)  # triangle wave in [0, 0.5]
        return np.mod(v + 1.2 * tri, 1.0) < 0.35
    if name == "diagonal":
        return np.mod((u + v) / np.sqrt(2.0), 1.0) < 0.35
    raise ValueError(f"unknown pattern {name!r}")
