"""Retrieval metrics of candidate frames against holdout purchases, before and after rules.

A holdout purchase is an event in ``purchase_events`` (frames without ``event``: a ``positive``
row). Recall@K and NDCG@K are those of :mod:`recsys.evaluation.metrics` (binary relevance),
averaged over the evaluated users that have at least one holdout positive; a user
whose list the rules emptied counts with zero hits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.evaluation.metrics import ndcg_at_k, recall_at_k
from recsys.mining.inputs import purchase_mask


def holdout_positives(holdout: pd.DataFrame, purchase_events: Sequence[str]) -> pd.DataFrame:
    """Distinct (user_idx, item_idx) of holdout purchases (see :func:`purchase_mask`)."""
    pos = holdout[purchase_mask(holdout, purchase_events)]
    return pos[["user_idx", "item_idx"]].drop_duplicates().reset_index(drop=True)


def retrieval_metrics(
    recs: pd.DataFrame,
    holdout: pd.DataFrame,
    ks: Sequence[int],
    purchase_events: Sequence[str],
    users: np.ndarray | None = None,
    rank_column: str = "rank",
) -> dict[str, float]:
    """recall@K and ndcg@K of ``recs`` (user_idx, item_idx, rank from 1) for every K in ``ks``."""
    truth = holdout_positives(holdout, purchase_events)
    if users is not None:
        truth = truth[truth["user_idx"].isin(users)]
    n_rel = truth.groupby("user_idx").size()
    out: dict[str, float] = {"users": float(len(n_rel))}
    if n_rel.empty:
        return out | {f"{m}@{k}": float("nan") for k in ks for m in ("recall", "ndcg")}
    ranked = recs[["user_idx", "item_idx", rank_column]].rename(columns={rank_column: "_rank"})
    found = ranked.merge(truth, on=["user_idx", "item_idx"])
    max_k = max(ks, default=0)
    found = found[found["user_idx"].isin(n_rel.index) & (found["_rank"] <= max_k)]
    hits = np.zeros((len(n_rel), max_k), dtype=bool)  # [users with positives, rank - 1]
    hits[n_rel.index.get_indexer(found["user_idx"]), found["_rank"].to_numpy(np.int64) - 1] = True
    counts = n_rel.to_numpy(np.int64)
    for k in ks:
        out[f"recall@{k}"] = float(recall_at_k(hits, counts, k).mean())
        out[f"ndcg@{k}"] = float(ndcg_at_k(hits, counts, k).mean())
    return out


def before_after(
    candidates: pd.DataFrame,
    plan: pd.DataFrame,
    holdout: pd.DataFrame,
    ks: Sequence[int],
    purchase_events: Sequence[str],
) -> pd.DataFrame:
    """Metrics of the retrieval candidates (their ``rank``) and of the rule-adjusted plan,
    over the same users (those with candidates)."""
    users = candidates["user_idx"].unique()
    rows = {
        "before_rules": retrieval_metrics(candidates, holdout, ks, purchase_events, users),
        "after_rules": retrieval_metrics(plan, holdout, ks, purchase_events, users),
    }
    return pd.DataFrame(rows).T.rename_axis("stage").reset_index()
