"""Final ordering per user: sort by boosted score, category diversity cap, top-k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.rules.frame import EvalFrame


@dataclass(frozen=True)
class Ranked:
    """Row indices of the plan (grouped by user, best first) and their 1-based ranks."""

    rows: np.ndarray
    rank: np.ndarray
    counts: dict[str, int]


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal consecutive keys."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.diff(np.r_[starts, keys.size])


def position_in_run(keys: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal consecutive keys."""
    starts, lengths = runs(keys)
    return np.arange(keys.size) - np.repeat(starts, lengths)


def cumcount(keys: np.ndarray) -> np.ndarray:
    """0-based occurrence number of each key in array order (a vectorised groupby cumcount)."""
    order = np.argsort(keys, kind="stable")
    out = np.empty(keys.size, dtype=np.int64)
    out[order] = position_in_run(keys[order])
    return out


def category_codes(frame: EvalFrame, column: str) -> np.ndarray:
    """Item-level integer codes of ``column`` (-1 for missing)."""
    scope, col = frame.where(column)
    return np.asarray(pd.Categorical(frame.tables[scope][col].astype("object")).codes, np.int64)


def rank_rows(
    frame: EvalFrame,
    keep: np.ndarray,
    final: np.ndarray,
    top_k: int,
    max_per_category: int | None,
    category_column: str,
) -> Ranked:
    """Kept rows ordered by user, then final score (desc; ties keep candidate order); then the
    category diversity cap and top-k."""
    idx = np.flatnonzero(keep)
    by_score = np.argsort(-final[idx], kind="stable")
    score_rank = np.empty(idx.size, dtype=np.int64)
    score_rank[by_score] = np.arange(idx.size)
    idx = idx[np.argsort(frame.user_pos[idx].astype(np.int64) * idx.size + score_rank, kind="stable")]
    counts = {"category_diversity": 0}
    if max_per_category is not None:
        codes = category_codes(frame, category_column)[frame.item_pos[idx]]
        n = np.int64(codes.max(initial=0) + 2)
        occurrence = cumcount(frame.user_pos[idx].astype(np.int64) * n + codes + 1)
        ok = (occurrence < max_per_category) | (codes < 0)
        counts["category_diversity"] = int((~ok).sum())
        idx = idx[ok]
    rank = position_in_run(frame.user_pos[idx])
    ok = rank < top_k
    counts["top_k"] = int((~ok).sum())
    return Ranked(idx[ok], rank[ok] + 1, counts)
