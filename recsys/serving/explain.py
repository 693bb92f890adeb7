"""Additive explanations: the score of a (user, item) pair split into behaviour, image and
social contributions plus a base, which add up to the score.

Each signal's contribution is its Shapley value over the three signals, from the scores with
every subset of them removed (user vectors without history / social images, item vectors without
the product image, exported by the converter); the base is the score with all three removed
(ids, demographics, item attributes). The base also absorbs the rounding difference between the
score retrieval returned and the float64 product, so the parts sum to that score.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np

SIGNALS = ("behaviour", "image", "social")
USER_SIGNALS = ("behaviour", "social")


def _weight(size: int, n: int = len(SIGNALS)) -> float:
    return factorial(size) * factorial(n - size - 1) / factorial(n)


def user_variant(present: frozenset[str]) -> int:
    """Row of the user variants ``[full, -behaviour, -social, -behaviour-social]`` that has
    the user signals of ``present`` (the converter's ``USER_DROPS`` order after the full one)."""
    drop = tuple(s for s in USER_SIGNALS if s not in present)
    return {(): 0, ("behaviour",): 1, ("social",): 2, ("behaviour", "social"): 3}[drop]


def contributions(users: np.ndarray, items: np.ndarray, score: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Per pair, the Shapley contribution of each signal and the base.

    ``users`` ``[4, n, d]``: the pair's user vector in :func:`user_variant` order; ``items``
    ``[2, n, d]``: the item vector with and without its image; ``score`` ``[n]``: the full
    score. ``base + behaviour + image + social == score``."""
    done: dict[frozenset[str], np.ndarray] = {}

    def value(present: frozenset[str]) -> np.ndarray:  # each of the 8 subsets computed once
        if present not in done:
            u = users[user_variant(present)].astype(np.float64)
            i = items[0 if "image" in present else 1].astype(np.float64)
            done[present] = (u * i).sum(-1)
        return done[present]

    out: dict[str, np.ndarray] = {}
    for signal in SIGNALS:
        others = [s for s in SIGNALS if s != signal]
        total = np.zeros(len(score), dtype=np.float64)
        for size in range(len(others) + 1):
            for subset in combinations(others, size):
                t = frozenset(subset)
                total += _weight(size) * (value(t | {signal}) - value(t))
        out[signal] = total
    # the index's score may differ from the float64 product by rounding: the base absorbs it
    out["base"] = value(frozenset()) + (score - value(frozenset(SIGNALS)))
    return out
