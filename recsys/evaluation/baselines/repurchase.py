"""Repurchase heuristic: the user's own (recency-weighted) history first, then recent popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys.evaluation.eval_data import interaction_matrix
from recsys.evaluation.rankers import ScoreRanker, rank_stored


def history_weights(
    frame: pd.DataFrame, n_users: int, n_items: int, half_life_days: float | None = None
) -> sp.csr_matrix:
    """Per (user, item) sum of ``0.5 ** (age_days / half_life_days)`` over history positives
    (plain counts when ``half_life_days`` is None); age is measured from the latest timestamp."""
    if half_life_days is None:
        w = np.ones(len(frame), dtype=np.float64)
    else:
        age = (frame["timestamp"].max() - frame["timestamp"]).dt.total_seconds().to_numpy()
        w = np.power(0.5, age / 86400.0 / float(half_life_days))
    return interaction_matrix(frame, n_users, n_items, w)


class RepurchaseRanker(ScoreRanker):
    """History items ranked by weight (ties by ``fallback``), then the remaining items by
    ``fallback`` in [0, 1)."""

    def __init__(self, history: sp.csr_matrix, fallback: np.ndarray) -> None:
        super().__init__(history.shape[1])
        self.history = history.tocsr()
        self.fallback_np = np.asarray(fallback, dtype=np.float64)
        self.fallback = torch.as_tensor(self.fallback_np, dtype=torch.float32)

    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        out = self.fallback.expand(len(user_idx), -1).clone()
        own = self.history[user_idx]
        if own.nnz:
            # exact order of (weight, fallback) as scores in (2, 3]: float32 sums of nearly
            # equal weights would merge or reorder them
            rows, cols, rank = rank_stored(own, self.fallback_np)
            step = 1.0 / (int(np.diff(own.indptr).max()) + 1)
            out[torch.from_numpy(rows), torch.from_numpy(cols)] = torch.from_numpy(
                (3.0 - rank * step).astype(np.float32))
        return out
