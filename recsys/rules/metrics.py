"""Retrieval metrics of candidate frames against holdout positives, before and after rules.

Recall@K = hits in the top K / relevant items; NDCG@K with gains 1 / log2(rank + 1) (binary
relevance). Averaged over the evaluated users that have at least one holdout positive; a user
whose list the rules emptied counts with zero hits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def holdout_positives(holdout: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_idx, item_idx) of positive holdout events (``positive`` or purchases)."""
    if "positive" in holdout.columns:
        pos = holdout[holdout["positive"].astype(bool)]
    else:
        pos = holdout[holdout["event"] == "purchase"]
    return pos[["user_idx", "item_idx"]].drop_duplicates().reset_index(drop=True)


def retrieval_metrics(
    recs: pd.DataFrame,
    holdout: pd.DataFrame,
    ks: Sequence[int],
    users: np.ndarray | None = None,
    rank_column: str = "rank",
) -> dict[str, float]:
    """recall@K and ndcg@K of ``recs`` (user_idx, item_idx, rank from 1) for every K in ``ks``."""
    truth = holdout_positives(holdout)
    if users is not None:
        truth = truth[truth["user_idx"].isin(users)]
    n_rel = truth.groupby("user_idx").size()
    out: dict[str, float] = {"users": float(len(n_rel))}
    if n_rel.empty:
        return out | {f"{m}@{k}": float("nan") for k in ks for m in ("recall", "ndcg")}
    ranked = recs[["user_idx", "item_idx", rank_column]].rename(columns={rank_column: "_rank"})
    hits = ranked.merge(truth, on=["user_idx", "item_idx"])
    hits = hits[hits["user_idx"].isin(n_rel.index)]
    for k in ks:
        top = hits[hits["_rank"] <= k]
        found = top.groupby("user_idx").size().reindex(n_rel.index, fill_value=0)
        dcg = (1.0 / np.log2(top["_rank"].to_numpy(dtype=float) + 1.0))
        dcg_user = pd.Series(dcg, index=top["user_idx"].to_numpy()).groupby(level=0).sum()
        ideal_table = np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=float)))
        ideal = ideal_table[np.minimum(n_rel.to_numpy(), k) - 1]
        dcg_all = dcg_user.reindex(n_rel.index, fill_value=0.0).to_numpy()
        out[f"recall@{k}"] = float((found.to_numpy() / n_rel.to_numpy()).mean())
        out[f"ndcg@{k}"] = float((dcg_all / ideal).mean())
    return out


def before_after(
    candidates: pd.DataFrame, plan: pd.DataFrame, holdout: pd.DataFrame, ks: Sequence[int]
) -> pd.DataFrame:
    """Metrics of the retrieval candidates (their ``rank``) and of the rule-adjusted plan,
    over the same users (those with candidates)."""
    users = candidates["user_idx"].unique()
    rows = {
        "before_rules": retrieval_metrics(candidates, holdout, ks, users),
        "after_rules": retrieval_metrics(plan, holdout, ks, users),
    }
    return pd.DataFrame(rows).T.rename_axis("stage").reset_index()
