"""Recency-weighted statistics of a history, counted back from each user's own last purchase
(not from the cut-off: on per-user hold-outs users stop at different dates): decayed purchase
weights, purchase-day rhythm and same-basket co-purchases."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def weights_from_last(age: np.ndarray, users: np.ndarray, user_last: np.ndarray,
                      half_life_days: float) -> np.ndarray:
    """Per history row: ``0.5 ** ((age - age of its user's last purchase) / half_life)``, 1 for
    the rows of the user's last purchase day's latest time."""
    return np.power(0.5, (age - user_last[users]) / float(half_life_days))


def keyed_sums(table: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum of ``weights`` per entry of the sorted distinct ``table`` (every key is in it)."""
    return np.bincount(np.searchsorted(table, keys), weights=weights, minlength=len(table))


def purchase_days(users: np.ndarray, age: np.ndarray, n_users: int) -> np.ndarray:
    """Distinct purchase days (whole days before the cut-off) per user."""
    day = np.floor(age).astype(np.int64)
    span = int(day.max(initial=0)) + 1
    keys = np.sort(users * np.int64(span) + day)  # a sort: np.unique hashes, ~7x slower here
    distinct = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return np.bincount(distinct // span, minlength=n_users).astype(np.float64)


def basket_matrix(users: np.ndarray, items: np.ndarray, age: np.ndarray, n_items: int
                  ) -> sp.csr_matrix:
    """Item x item count of baskets (one user's purchases of one day) holding both items, the
    diagonal dropped; an item counts once per basket."""
    day = np.floor(age).astype(np.int64)
    span = int(day.max(initial=0)) + 1
    basket = np.unique(users * np.int64(span) + day, return_inverse=True)[1].ravel()
    onehot = sp.csr_matrix((np.ones(len(items)), (basket, items)),
                           shape=(int(basket.max(initial=-1)) + 1, n_items))
    onehot.sum_duplicates()
    onehot.data[:] = 1.0  # repeats in one basket count once
    both = (onehot.T @ onehot).tocsr()
    both.setdiag(0.0)
    both.eliminate_zeros()
    return both


def pair_values(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[p], cols[p]]`` for every p (0 where not stored, duplicates summed), without
    densifying or sorting the matrix: its entries are searched among the sorted queries."""
    m = sp.csr_matrix(matrix)
    n = np.int64(m.shape[1])
    query, inverse = np.unique(np.asarray(rows, np.int64) * n + np.asarray(cols, np.int64),
                               return_inverse=True)
    if not len(query) or not m.nnz:
        return np.zeros(len(inverse))
    stored = np.repeat(np.arange(m.shape[0], dtype=np.int64) * n, np.diff(m.indptr)) + m.indices
    pos = np.minimum(np.searchsorted(query, stored), len(query) - 1)
    hit = query[pos] == stored
    return np.bincount(pos[hit], weights=m.data[hit], minlength=len(query))[inverse.ravel()]
