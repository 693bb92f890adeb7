"""Lists of values per group key without a Python call per group."""

from __future__ import annotations

import numpy as np
import pandas as pd


def lists_by_key(keys: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` grouped into lists by ``keys`` (already sorted so groups are contiguous; order
    within a group is kept), indexed by key."""
    k = keys.to_numpy()
    if k.size == 0:
        return pd.Series([], dtype=object)
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    chunks = np.split(np.asarray(values.to_numpy(), dtype=object), starts[1:])
    return pd.Series([c.tolist() for c in chunks], index=k[starts], dtype=object)
