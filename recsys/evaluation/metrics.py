"""Ranking metrics as pure numpy functions (a leaf module: training's validation imports it).

Conventions: ``top_k`` is an int array ``[n_users, K]`` of item indices, best first (equal scores
ranked by lower item index, :mod:`recsys.ties`), padded with
``-1`` where fewer than ``K`` items were ranked; ``truth`` is a sparse matrix ``[n_users, n_items]``
whose non-zero entries are the relevant items of each row (binary relevance; stored zeros are
ignored). Per-user metrics are
averaged over the users that have at least one relevant item.

* Recall@K = hits in the top K / number of relevant items.
* NDCG@K = DCG / ideal DCG with gains ``1 / log2(rank + 1)`` (ranks from 1).
* HitRate@K = 1 if any relevant item is in the top K.
* MRR@K = 1 / rank of the first relevant item in the top K (0 if none).
* MAP@K = sum over hit ranks r of precision@r, divided by ``min(#relevant, K)`` (the Kaggle H&M
  definition; torchmetrics divides by the number of hits instead).
* Coverage = distinct recommended items / catalogue size.
* Novelty = mean self-information ``-log2(p_i)`` of recommended items, with
  ``p_i = (users who interacted with i + 1) / (users + 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recsys.arrays import member

METRIC_NAMES: tuple[str, ...] = ("recall", "ndcg", "hitrate", "mrr", "map")


def binary_truth(truth: sp.spmatrix) -> sp.csr_matrix:
    """``truth`` as canonical CSR whose stored entries are the relevant items: the input itself
    when it already is (callers only read it), else a cleaned copy."""
    if (sp.issparse(truth) and truth.format == "csr" and truth.has_canonical_format
            and bool((truth.data != 0).all())):
        return truth
    out = sp.csr_matrix(truth, copy=True)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def hit_matrix(top_k: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean ``[n_users, K]``: whether ``top_k[u, j]`` is a relevant item of row ``u``."""
    top_k = np.asarray(top_k, dtype=np.int64)
    truth = binary_truth(truth)
    if top_k.ndim != 2 or top_k.shape[0] != truth.shape[0]:
        raise ValueError(f"top_k shape {top_k.shape} does not match truth rows {truth.shape[0]}")
    n_items = np.int64(truth.shape[1])
    coo = truth.tocoo()
    keys = coo.row.astype(np.int64) * n_items + coo.col.astype(np.int64)
    rows = np.arange(top_k.shape[0], dtype=np.int64)[:, None]
    return member(keys, rows * n_items + top_k) & (top_k >= 0)


def relevant_counts(truth: sp.csr_matrix) -> np.ndarray:
    """Number of relevant items (non-zero entries) per row."""
    return np.diff(binary_truth(truth).indptr).astype(np.int64)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k."""
    return hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary gains."""
    disc = _discounts(k)
    dcg = (hits[:, :k] * disc[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_relevant, k)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per-user HitRate@k (1.0 when any relevant item is ranked in the top k)."""
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item within the top k (0 if none)."""
    h = hits[:, :k]
    first = h.argmax(axis=1)
    return np.asarray(np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0), dtype=np.float64)


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user average precision@k, normalised by ``min(#relevant, k)``."""
    h = hits[:, :k].astype(np.float64)
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)
    precision = np.cumsum(h, axis=1) / ranks
    denom = np.minimum(n_relevant, k).astype(np.float64)
    total = (precision * h).sum(axis=1)
    return np.divide(total, denom, out=np.zeros_like(total), where=denom > 0)


def per_user_metrics(
    top_k: np.ndarray, truth: sp.csr_matrix, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user values ``{"recall@k": [n_users], ...}`` for every ``k`` in ``ks``."""
    truth = binary_truth(truth)
    return metrics_from_hits(hit_matrix(top_k, truth), relevant_counts(truth), ks)


def metrics_from_hits(
    hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user :data:`METRIC_NAMES` at every ``k`` from a boolean hit matrix ``[n_users, K]``
    (ranked lists, best first) and the number of relevant items per user: the one metric
    implementation, shared by the evaluator and training's validation."""
    hits = np.asarray(hits, dtype=bool)
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k > hits.shape[1]:
            raise ValueError(f"k={k} exceeds the {hits.shape[1]} ranked items per user")
        out[f"recall@{k}"] = recall_at_k(hits, n_rel, k)
        out[f"ndcg@{k}"] = ndcg_at_k(hits, n_rel, k)
        out[f"hitrate@{k}"] = hit_rate_at_k(hits, k)
        out[f"mrr@{k}"] = mrr_at_k(hits, k)
        out[f"map@{k}"] = map_at_k(hits, n_rel, k)
    return out


def ranking_metrics(
    top_k: np.ndarray, truth: sp.csr_matrix, ks: Sequence[int]
) -> dict[str, float]:
    """Mean of :func:`per_user_metrics` over users with at least one relevant item."""
    truth = binary_truth(truth)
    mask = relevant_counts(truth) > 0
    if not mask.any():
        return {}
    values = per_user_metrics(top_k[mask], truth[mask], ks)
    return {name: float(v.mean()) for name, v in values.items()}


def catalogue_coverage(top_k: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    ids = np.asarray(top_k).ravel()
    return float(np.unique(ids[ids >= 0]).size / n_items) if n_items else 0.0


def novelty(top_k: np.ndarray, item_user_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information (bits) of the recommended items."""
    ids = np.asarray(top_k).ravel()
    ids = ids[ids >= 0]
    if ids.size == 0:
        return 0.0
    p = (np.asarray(item_user_counts, dtype=np.float64)[ids] + 1.0) / (n_users + 1.0)
    return float(-np.log2(p).mean())
