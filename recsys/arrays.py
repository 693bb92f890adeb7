"""Small numpy helpers shared across packages (a leaf module: numpy only)."""

from __future__ import annotations

import numpy as np


def member(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``np.isin(query, keys)`` (same shape as ``query``) by binary search in the sorted keys;
    fast when ``query`` is large."""
    table = np.sort(np.asarray(keys).ravel())
    query = np.asarray(query)
    if table.size == 0:
        return np.zeros(query.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(table, query), table.size - 1)
    return np.asarray(table[pos] == query, dtype=bool)
