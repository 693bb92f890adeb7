"""Candidates from the history before the cut-off alone (no trained model needed).

score(u, i) = repeat_weight * log1p(purchases of i by u)
            + share of u's purchases in i's category * i's share of its category's recent sales
            + popularity_weight * i's share of all recent sales,
where "recent" is the ``popularity_days`` before the cut-off and a user without purchases takes the
catalogue's category shares. Items nobody bought recently and u never bought are not candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)
_CHUNK = 2048  # users scored at once


@dataclass(frozen=True)
class HistoryCandidateConfig:
    k: int
    popularity_days: float
    repeat_weight: float
    popularity_weight: float


def history_candidates(buys: pd.DataFrame, n_users: int, item_category: np.ndarray,
                       cutoff: pd.Timestamp, cfg: HistoryCandidateConfig) -> pd.DataFrame:
    """Top-``k`` candidates of every user (user_idx, item_idx, score, rank, behaviour_score,
    image_score, social_score) from purchases ``buys`` (user_idx, item_idx, timestamp, quantity)
    before ``cutoff``; ``item_category`` holds an integer category code per item."""
    n_items = len(item_category)
    n_cat = int(item_category.max()) + 1 if n_items else 0
    recent = buys[buys["timestamp"] >= cutoff - cfg.popularity_days * DAY]
    sales = np.bincount(recent["item_idx"], weights=recent["quantity"], minlength=n_items)
    cat_sales = np.bincount(item_category, weights=sales, minlength=n_cat)
    with np.errstate(divide="ignore", invalid="ignore"):
        in_cat = np.nan_to_num(sales / cat_sales[item_category])
    total = max(sales.sum(), 1.0)
    u, i = buys["user_idx"].to_numpy(np.int64), buys["item_idx"].to_numpy(np.int64)
    user_cat = np.zeros((n_users, n_cat))
    np.add.at(user_cat, (u, item_category[i]), 1.0)
    counts = user_cat.sum(axis=1, keepdims=True)
    share = np.where(counts > 0, user_cat / np.maximum(counts, 1.0), cat_sales / total)
    own = pd.Series(1.0, index=pd.MultiIndex.from_arrays([u, i])).groupby(level=[0, 1]).sum()
    k = min(cfg.k, n_items)
    frames = []
    for lo in range(0, n_users, _CHUNK):
        hi = min(lo + _CHUNK, n_users)
        score = share[lo:hi][:, item_category] * in_cat[None, :] + cfg.popularity_weight * sales / total
        known = np.broadcast_to(sales > 0, score.shape).copy()
        sel = (own.index.get_level_values(0) >= lo) & (own.index.get_level_values(0) < hi)
        ou, oi = own.index.get_level_values(0)[sel] - lo, own.index.get_level_values(1)[sel]
        score[ou, oi] += cfg.repeat_weight * np.log1p(own.to_numpy()[sel])
        known[ou, oi] = True
        score = np.where(known, score, -np.inf)
        top = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < n_items else \
            np.tile(np.arange(n_items), (hi - lo, 1))
        top_score = np.take_along_axis(score, top, 1)
        order = np.lexsort((top, -top_score), axis=1)
        top, top_score = np.take_along_axis(top, order, 1), np.take_along_axis(top_score, order, 1)
        ok = np.isfinite(top_score)
        rows, cols = np.nonzero(ok)
        frames.append(pd.DataFrame({"user_idx": rows + lo, "item_idx": top[rows, cols],
                                    "score": top_score[rows, cols], "rank": cols + 1}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["user_idx", "item_idx", "score", "rank"])
    out = out.astype({"user_idx": "int64", "item_idx": "int64", "score": "float64",
                      "rank": "int64"})
    return out.assign(behaviour_score=out["score"], image_score=0.0, social_score=0.0)
