"""Evaluation slices: cold/warm/rare items, cold/warm users and user segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.evaluation.eval_data import EvalData


@dataclass(frozen=True)
class Slice:
    """A subset of the evaluated users (``rows`` into ``EvalData.users``) and their truth."""

    name: str
    rows: np.ndarray
    truth: sp.csr_matrix


def _by_items(name: str, truth: sp.csr_matrix, keep: np.ndarray) -> Slice:
    sub = truth @ sp.diags(keep.astype(np.float32))
    sub = sp.csr_matrix(sub)
    sub.eliminate_zeros()
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    return Slice(name, rows, sub[rows])


def _by_users(name: str, truth: sp.csr_matrix, rows: np.ndarray) -> Slice:
    return Slice(name, rows, truth[rows])


def build_slices(
    data: EvalData, segments: Sequence[str] = (), min_users: int = 1, bins: int = 4,
    rare_max_users: int = 0,
) -> list[Slice]:
    """Cold/warm item and user slices plus one slice per segment value with enough users.

    ``rare_max_users`` > 0 adds ``rare_items``: the purchases of items with at most that many
    history users (cold items included), where id embeddings have little to learn from and
    content (images, attributes) has to carry the item. Segment columns are read from the users
    table; numeric columns are cut into ``bins`` quantile bands; columns absent from the table
    are skipped.
    """
    truth = data.user_truth
    cold_user = data.cold_users[data.users]
    cold_item = data.cold_items
    slices = [
        _by_items("cold_items", truth, cold_item),
        _by_items("warm_items", truth, ~cold_item),
        _by_users("cold_users", truth, np.flatnonzero(cold_user)),
        _by_users("warm_users", truth, np.flatnonzero(~cold_user)),
    ]
    if rare_max_users > 0:
        slices.append(_by_items("rare_items", truth, data.item_user_counts <= rare_max_users))
    table = data.user_table.set_index("user_idx")
    for col in segments:
        if col not in table.columns:
            continue
        values = _segment_values(table[col].reindex(data.users), bins)
        if values.nunique() < 2:
            continue  # one value for everybody (e.g. a column the source does not fill)
        for value, count in values.value_counts().sort_index().items():
            if count >= min_users:
                rows = np.flatnonzero((values == value).to_numpy())
                slices.append(_by_users(f"{col}={value}", truth, rows))
    return [s for s in slices if len(s.rows)]


def _segment_values(column: pd.Series, bins: int) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > bins:
        column = pd.qcut(column, bins, duplicates="drop")
    return column.astype("string").fillna("missing")
