"""Product silhouettes as polygons in unit coordinates (x right, y down, centred on 0.5, 0.5)."""

from __future__ import annotations

import numpy as np

Polygon = np.ndarray  # (n_points, 2) float


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0,
             n: int = 24) -> Polygon:
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _ring(cx: float, cy: float, rx: float, ry: float, width: float) -> Polygon:
    """Upper half ring (a bag handle)."""
    outer = _ellipse(cx, cy, rx, ry, 180.0, 360.0, 16)
    inner = _ellipse(cx, cy, rx - width, ry - width, 360.0, 180.0, 16)
    return np.concatenate([outer, inner])


def _poly(*points: tuple[float, float]) -> Polygon:
    return np.asarray(points, dtype=np.float64)


SILHOUETTES: dict[str, list[Polygon]] = {
    "shirt": [_poly((0.36, 0.14), (0.44, 0.14), (0.5, 0.21), (0.56, 0.14), (0.64, 0.14),
                    (0.9, 0.3), (0.81, 0.44), (0.71, 0.37), (0.71, 0.88), (0.29, 0.88),
                    (0.29, 0.37), (0.19, 0.44), (0.1, 0.3))],
    "jacket": [_poly((0.34, 0.11), (0.5, 0.2), (0.66, 0.11), (0.85, 0.2), (0.93, 0.8),
                     (0.8, 0.82), (0.74, 0.42), (0.74, 0.9), (0.26, 0.9), (0.26, 0.42),
                     (0.2, 0.82), (0.07, 0.8), (0.15, 0.2))],
    "trousers": [_poly((0.27, 0.09), (0.73, 0.09), (0.8, 0.92), (0.58, 0.92), (0.5, 0.38),
                       (0.42, 0.92), (0.2, 0.92))],
    "dress": [_poly((0.38, 0.08), (0.44, 0.08), (0.5, 0.15), (0.56, 0.08), (0.62, 0.08),
                    (0.64, 0.38), (0.86, 0.92), (0.14, 0.92), (0.36, 0.38))],
    "skirt": [_poly((0.3, 0.2), (0.7, 0.2), (0.88, 0.82), (0.12, 0.82))],
    "shoe": [_poly((0.08, 0.36), (0.3, 0.33), (0.42, 0.5), (0.78, 0.55), (0.92, 0.64),
                   (0.92, 0.74), (0.08, 0.74)),
             _poly((0.06, 0.72), (0.94, 0.72), (0.94, 0.8), (0.06, 0.8))],
    "bag": [_poly((0.16, 0.38), (0.84, 0.38), (0.88, 0.88), (0.12, 0.88)),
            _ring(0.5, 0.4, 0.24, 0.28, 0.06)],
    "hat": [_ellipse(0.5, 0.58, 0.24, 0.34, 180.0, 360.0, 20),
            _ellipse(0.5, 0.6, 0.42, 0.1)],
}

# Where the brand mark sits on each silhouette (unit coordinates).
MARK_ANCHOR: dict[str, tuple[float, float]] = {
    "shirt": (0.6, 0.3), "jacket": (0.62, 0.32), "trousers": (0.36, 0.2), "dress": (0.56, 0.3),
    "skirt": (0.6, 0.32), "shoe": (0.62, 0.64), "bag": (0.5, 0.62), "hat": (0.5, 0.44),
}


def transform(poly: Polygon, scale: float, angle_deg: float, shift: tuple[float, float],
              size: float) -> list[tuple[float, float]]:
    """Scale and rotate around the centre, shift (unit coordinates), then map to pixels."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = ((poly - 0.5) * scale) @ rot.T + 0.5 + np.asarray(shift)
    return [(float(x), float(y)) for x, y in pts * size]
