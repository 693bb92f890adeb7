"""Recency, frequency and monetary value per user, with quantile scores."""

from __future__ import annotations

import numpy as np
import pandas as pd


def order_keys(purchases: pd.DataFrame) -> pd.Series:
    """One order per user and calendar day (int64 day number)."""
    days = purchases["timestamp"].dt.normalize().astype("datetime64[ns]").astype("int64")
    return (days // 86_400_000_000_000).astype("int64")


def with_orders(purchases: pd.DataFrame) -> pd.DataFrame:
    """``purchases`` with an ``order`` column (:func:`order_keys`) unless it already has one."""
    if "order" in purchases.columns:
        return purchases
    return purchases.assign(order=order_keys(purchases))


def quantile_score(values: pd.Series, bins: int, higher_is_better: bool = True) -> pd.Series:
    """Scores 1..bins by percentile rank (ties share a score); NaN values get 0."""
    pct = (values if higher_is_better else -values).rank(method="average", pct=True)
    score = np.ceil(pct * bins).clip(1, bins)
    return score.fillna(0).astype("int64")


def compute_rfm(
    purchases: pd.DataFrame, users: pd.DataFrame, now: pd.Timestamp, bins: int
) -> pd.DataFrame:
    """RFM table over every user: recency in days before ``now`` (NaN without purchases),
    frequency (orders), monetary (spend), tenure, quantile scores and their sum."""
    p = with_orders(purchases)
    grouped = p.groupby("user_idx")
    agg = pd.DataFrame(
        {
            "last_purchase": grouped["timestamp"].max(),
            "first_purchase": grouped["timestamp"].min(),
            "frequency": grouped["order"].nunique(),
            "monetary": grouped["amount"].sum(),
            "n_items": grouped["quantity"].sum(),
        }
    )
    out = users[["user_idx", "user_id"]].copy()
    out = out.join(agg, on="user_idx")
    day = pd.Timedelta(days=1)
    out["recency_days"] = (now - out["last_purchase"]) / day
    out["tenure_days"] = (now - out["first_purchase"]) / day
    out["frequency"] = out["frequency"].fillna(0).astype("int64")
    out["n_items"] = out["n_items"].fillna(0).astype("int64")
    out["monetary"] = out["monetary"].fillna(0.0).astype("float64")
    buyers = out["frequency"] > 0
    out["r_score"] = 0
    out["f_score"] = 0
    out["m_score"] = 0
    out.loc[buyers, "r_score"] = quantile_score(out.loc[buyers, "recency_days"], bins, False)
    out.loc[buyers, "f_score"] = quantile_score(out.loc[buyers, "frequency"].astype(float), bins)
    out.loc[buyers, "m_score"] = quantile_score(out.loc[buyers, "monetary"], bins)
    for col in ("r_score", "f_score", "m_score"):
        out[col] = out[col].astype("int64")
    out["rfm_score"] = out["r_score"] + out["f_score"] + out["m_score"]
    out["rfm_code"] = (
        out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    )
    cols = ["user_idx", "user_id", "recency_days", "frequency", "monetary", "n_items",
            "tenure_days", "last_purchase", "first_purchase", "r_score", "f_score", "m_score",
            "rfm_score", "rfm_code"]
    return out[cols]
