"""Exact top-K over a whole catalogue: chunked matrix products, masking and ``torch.topk``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError

EMPTY = -1


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


def mask_scores(scores: torch.Tensor, excluded: sp.csr_matrix | None) -> torch.Tensor:
    """Set excluded (row, item) positions of ``scores`` to -inf, in place."""
    if excluded is not None and excluded.nnz:
        coo = excluded.tocoo()
        r = torch.from_numpy(coo.row.astype(np.int64))
        c = torch.from_numpy(coo.col.astype(np.int64))
        scores[r, c] = float("-inf")
    return scores


def select_top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of ``scores``; -inf positions become ``EMPTY`` ids."""
    values, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    ids = idx.numpy().astype(np.int64)
    vals = values.numpy().astype(np.float32)
    ids[~np.isfinite(vals)] = EMPTY
    return vals, ids


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
    Returns ``(scores [n, k] float32, item indices [n, k] int64)``.
    """
    k = check_k(k, items.shape[0])
    item_t = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))
    item_sq = (item_t * item_t).sum(1) if metric == "l2" else None
    n = queries.shape[0]
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            q = torch.from_numpy(np.ascontiguousarray(queries[start:stop], dtype=np.float32))
            scores = q @ item_t.T
            if item_sq is not None:
                scores = 2 * scores - item_sq[None, :] - (q * q).sum(1, keepdim=True)
            sub = excluded[start:stop] if excluded is not None else None
            mask_scores(scores, sub)
            out_s[start:stop], out_i[start:stop] = select_top_k(scores, k)
    return out_s, out_i
