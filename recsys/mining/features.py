"""Behavioural features per user as of a cutoff time, and churn / purchase-intent labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.mining.rfm import with_orders

DAY = pd.Timedelta(days=1)


def behaviour_features(
    interactions: pd.DataFrame,
    purchases: pd.DataFrame,
    users: pd.DataFrame,
    cutoff: pd.Timestamp,
    window_days: int,
    user_numeric: Sequence[str],
) -> pd.DataFrame:
    """Numeric features for every user (index user_idx) from events strictly before ``cutoff``."""
    hist = interactions[interactions["timestamp"] < cutoff]
    p = with_orders(purchases[purchases["timestamp"] < cutoff])
    recent_from = cutoff - window_days * DAY
    idx = pd.Index(users["user_idx"].to_numpy(), name="user_idx")
    span = (cutoff - interactions["timestamp"].min()) / DAY + 1.0
    gp, gh = p.groupby("user_idx"), hist.groupby("user_idx")
    recent_p = p[p["timestamp"] >= recent_from]
    recent_h = hist[hist["timestamp"] >= recent_from]
    f = pd.DataFrame(index=idx)
    f["recency_days"] = ((cutoff - gp["timestamp"].max()) / DAY).reindex(idx).fillna(span)
    f["event_recency_days"] = ((cutoff - gh["timestamp"].max()) / DAY).reindex(idx).fillna(span)
    f["tenure_days"] = ((cutoff - gh["timestamp"].min()) / DAY).reindex(idx).fillna(0.0)
    f["frequency"] = gp["order"].nunique().reindex(idx).fillna(0.0)
    f["monetary"] = gp["amount"].sum().reindex(idx).fillna(0.0)
    f["n_items"] = gp["quantity"].sum().reindex(idx).fillna(0.0)
    f["distinct_items"] = gp["item_idx"].nunique().reindex(idx).fillna(0.0)
    f["avg_price"] = gp["price"].mean().reindex(idx).fillna(0.0)
    f["n_events"] = gh.size().reindex(idx).fillna(0.0)
    f["recent_orders"] = recent_p.groupby("user_idx")["order"].nunique().reindex(idx).fillna(0.0)
    f["recent_events"] = recent_h.groupby("user_idx").size().reindex(idx).fillna(0.0)
    f["days_per_order"] = (f["tenure_days"] / f["frequency"].where(f["frequency"] > 0)).fillna(span)
    by_idx = users.set_index("user_idx")
    for col in user_numeric:
        if col in by_idx.columns and pd.api.types.is_numeric_dtype(by_idx[col]):
            v = by_idx[col].reindex(idx).astype(float)
            f[col] = v.fillna(v.median() if v.notna().any() else 0.0)
    return f.astype("float64")


def labels(
    interactions: pd.DataFrame,
    purchases: pd.DataFrame,
    cutoff: pd.Timestamp,
    window_days: int,
) -> dict[str, pd.Series]:
    """``churn`` over users with a purchase before ``cutoff`` (1 = none in the window after it);
    ``intent`` over users with any event before it (1 = a purchase in the window)."""
    end = cutoff + window_days * DAY
    before_p = purchases.loc[purchases["timestamp"] < cutoff, "user_idx"].unique()
    before_any = interactions.loc[interactions["timestamp"] < cutoff, "user_idx"].unique()
    in_window = purchases[(purchases["timestamp"] >= cutoff) & (purchases["timestamp"] < end)]
    future = set(in_window["user_idx"].unique())
    buyers = np.sort(before_p)
    active = np.sort(before_any)
    return {
        "churn": pd.Series([u not in future for u in buyers], index=buyers, dtype="int64"),
        "intent": pd.Series([u in future for u in active], index=active, dtype="int64"),
    }
