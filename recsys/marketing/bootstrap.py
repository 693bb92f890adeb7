"""Bootstrap confidence intervals of ratio-of-sums statistics over users, vectorised.

Each statistic is ``sum(num) / sum(den)`` over users (``den`` None: a plain sum). Resampling users
with replacement is a multinomial weight vector per replicate, so every statistic of every
replicate is one matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Stat = tuple[np.ndarray, np.ndarray | None]
_CHUNK = 1 << 22  # replicate x user weights held at once


def ratio(num: float, den: float | None) -> float:
    if den is None:
        return float(num)
    return float(num / den) if den != 0 else float("nan")


def bootstrap_ci(stats: Mapping[str, Stat], n_boot: int, level: float,
                 rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    """(estimate, low, high) of each statistic; percentile interval at ``level``."""
    n = len(next(iter(stats.values()))[0]) if stats else 0
    out: dict[str, tuple[float, float, float]] = {}
    if n == 0:
        return {k: (float("nan"), float("nan"), float("nan")) for k in stats}
    names = list(stats)
    nums = np.stack([np.asarray(stats[k][0], float) for k in names], axis=1)
    dens = np.stack([np.ones(n) if stats[k][1] is None else np.asarray(stats[k][1], float)
                     for k in names], axis=1)
    is_sum = np.array([stats[k][1] is None for k in names])
    reps: list[np.ndarray] = []
    step = max(1, _CHUNK // n)
    for lo in range(0, n_boot, step):
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(step, n_boot - lo)).astype(float)
        num, den = w @ nums, w @ dens
        with np.errstate(divide="ignore", invalid="ignore"):
            reps.append(np.where(is_sum, num, num / den))
    boot = np.concatenate(reps) if reps else np.zeros((0, len(names)))
    alpha = (1.0 - level) / 2.0
    for j, k in enumerate(names):
        est = ratio(nums[:, j].sum(), None if is_sum[j] else dens[:, j].sum())
        finite = boot[:, j][np.isfinite(boot[:, j])]
        lo_, hi_ = (np.quantile(finite, [alpha, 1 - alpha]) if finite.size
                    else (float("nan"), float("nan")))
        out[k] = (est, float(lo_), float(hi_))
    return out
