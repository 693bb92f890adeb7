"""Popularity baselines: all-time and recent (last N days of history) item counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recsys.evaluation.rankers import ScoreRanker


def item_counts(frame: pd.DataFrame, n_items: int) -> np.ndarray:
    """Positive interactions per item."""
    return np.bincount(frame["item_idx"].to_numpy(np.int64), minlength=n_items).astype(np.float64)


def popularity_scores(
    frame: pd.DataFrame, n_items: int, window_days: float | None = None
) -> np.ndarray:
    """Counts within the last ``window_days`` before the latest timestamp (all time if None),
    ties broken by all-time counts, then by item index; returned as distinct rank scores
    ``(n - rank) / (n + 1)`` in (0, 1) so that every ranking is deterministic."""
    total = item_counts(frame, n_items)
    tie = total / (total.max() + 1.0)
    if window_days is None:
        score = total + tie
    else:
        end = frame["timestamp"].max()
        recent = frame[frame["timestamp"] > end - pd.Timedelta(days=float(window_days))]
        score = item_counts(recent, n_items) + tie
    order = np.lexsort((np.arange(n_items), -score))
    rank = np.empty(n_items, dtype=np.float64)
    rank[order] = np.arange(n_items)
    return (n_items - rank) / (n_items + 1.0)


class PopularityRanker(ScoreRanker):
    """Everybody gets the same ranking by item score."""

    def __init__(self, item_scores: np.ndarray) -> None:
        super().__init__(len(item_scores))
        self.item_scores = torch.as_tensor(np.asarray(item_scores, dtype=np.float32))

    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.item_scores.expand(len(user_idx), -1)
