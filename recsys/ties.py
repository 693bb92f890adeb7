"""The one tie rule of every top-k in the package (a leaf module: numpy and torch only).

Items are ranked by score, higher first; **equal scores rank the lower item index first**.
``-inf`` marks an item that must never be ranked (excluded); NaN is treated as ``-inf``, and
``-0.0`` equals ``0.0``. Training's validation, the evaluator's rankers, exact retrieval and the
FAISS index post-processing all rank through :func:`top_k` / :func:`sort_rows`, so every path
gives the same list for the same scores.

:func:`top_k` is exact and single-pass: each float32 score becomes an order-preserving int32,
and ``key = score_int << 32 | (n_items - 1 - item)`` is a distinct int64 per item, so a plain
``torch.topk`` of the keys yields the rule's order whatever its internal tie handling.
"""

from __future__ import annotations

import numpy as np
import torch

_LOW31 = 0x7FFFFFFF


def order_keys(scores: torch.Tensor) -> torch.Tensor:
    """Distinct int64 keys ``[n_rows, n_items]``, larger = ranked first under the tie rule."""
    s = torch.nan_to_num(scores.float(), nan=float("-inf"), posinf=float("inf"),
                         neginf=float("-inf"))
    s.add_(0.0)  # -0.0 + 0.0 = +0.0: both zeros share one key
    bits = s.view(torch.int32).to(torch.int64)
    bits = torch.where(bits < 0, bits ^ _LOW31, bits)  # IEEE order as signed integers
    n = scores.shape[-1]
    low = torch.arange(n - 1, -1, -1, dtype=torch.int64, device=scores.device)
    return bits.mul_(1 << 32).add_(low)


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``k`` columns of each row of float ``scores`` under the tie rule:
    ``(values [n, k], indices [n, k] int64)``, best first."""
    idx = torch.topk(order_keys(scores), k, dim=1, largest=True, sorted=True).indices
    return scores.gather(1, idx), idx


def sort_rows(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Column order of each row of ``(scores, ids)`` under the tie rule, with negative ids
    (empty slots) last; for candidate lists that are already cut (ANN results)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.lexsort((ids, -s, ids < 0), axis=-1)


def rank_items(scores: np.ndarray) -> np.ndarray:
    """All item indices of one score vector in the tie rule's order (numpy reference)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.lexsort((np.arange(s.shape[-1]), -s))
