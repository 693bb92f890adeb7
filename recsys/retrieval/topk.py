"""Exact top-K over a whole catalogue: chunked matrix products, masking and the package's one
tie rule (:mod:`recsys.ties`: equal scores rank the lower item index first)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.ties import top_k

EMPTY = -1
# Scores per query chunk of exact_top_k (4 MiB of float32): cache-sized blocks rank fastest.
SCORE_CHUNK_FLOATS = 1 << 20


def check_k(k: int, n_items: int) -> int:
    """``k`` as an int; a clear error when it is not in ``1..n_items``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ConfigError(f"k must be an integer, got {k!r}")
    if k <= 0 or k > n_items:
        raise ConfigError(f"k={k} must be between 1 and the catalogue size {n_items}")
    return int(k)


def exclusion_rows(exclude: sp.csr_matrix | None, rows: np.ndarray) -> sp.csr_matrix | None:
    """Rows of ``exclude`` for ``rows`` (None when nothing is excluded)."""
    if exclude is None:
        return None
    sub = exclude[rows]
    return sub if sub.nnz else None


def mask_scores(
    scores: torch.Tensor, excluded: sp.csr_matrix | None, start: int = 0
) -> torch.Tensor:
    """Set excluded positions of ``scores`` to -inf, in place; row ``r`` of ``scores`` is row
    ``start + r`` of ``excluded`` (so a chunk of queries needs no sparse slicing)."""
    if excluded is None or not excluded.nnz:
        return scores
    n_rows, n_cols = scores.shape
    lo, hi = int(excluded.indptr[start]), int(excluded.indptr[start + n_rows])
    if hi == lo:
        return scores
    counts = np.diff(excluded.indptr[start : start + n_rows + 1])
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    flat = rows * n_cols + excluded.indices[lo:hi].astype(np.int64)
    scores.view(-1).index_fill_(0, torch.from_numpy(flat), float("-inf"))
    return scores


def select_top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of ``scores`` (ties: lower index first); -inf positions
    become ``EMPTY`` ids."""
    values, idx = top_k(scores, k)
    ids = idx.numpy().astype(np.int64)
    vals = values.numpy().astype(np.float32)
    ids[~np.isfinite(vals)] = EMPTY
    return vals, ids


def chunk_rows(batch_size: int, n_items: int, n: int) -> int:
    """Queries scored at once: at most ``batch_size`` and :data:`SCORE_CHUNK_FLOATS` scores, so
    the score block stays cache-sized and one buffer serves every chunk (never below one row)."""
    return max(1, min(batch_size, SCORE_CHUNK_FLOATS // max(1, n_items), n))


def exact_top_k(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    excluded: sp.csr_matrix | None = None,
    batch_size: int = 1024,
    metric: str = "ip",
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items per query by inner product (or negative squared L2), in query chunks.

    ``excluded`` is a CSR matrix aligned with ``queries`` rows whose non-zeros are dropped.
    A chunk holds at most ``batch_size`` queries and :data:`SCORE_CHUNK_FLOATS` scores, in one
    reused buffer: a cache-sized score block makes ``topk`` read warm memory and avoids
    re-faulting a fresh allocation per chunk (about 2x faster than one big block).
    Returns ``(scores [n, k] float32, item indices [n, k] int64)``.
    """
    k = check_k(k, items.shape[0])
    item_t = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))
    item_sq = (item_t * item_t).sum(1) if metric == "l2" else None
    n, n_items = queries.shape[0], item_t.shape[0]
    chunk = chunk_rows(batch_size, n_items, n)
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    with torch.inference_mode():
        buffer = torch.empty((chunk, n_items), dtype=torch.float32)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            q = torch.from_numpy(np.ascontiguousarray(queries[start:stop], dtype=np.float32))
            scores = torch.mm(q, item_t.T, out=buffer[: stop - start])
            if item_sq is not None:
                scores.mul_(2).sub_(item_sq[None, :]).sub_((q * q).sum(1, keepdim=True))
            mask_scores(scores, excluded, start)
            out_s[start:stop], out_i[start:stop] = select_top_k(scores, k)
    return out_s, out_i
