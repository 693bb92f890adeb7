"""Consumer profiles in four dimensions: demographics, preferences, purchasing power, habits."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.mining.config import ProfileConfig
from recsys.mining.grouping import lists_by_key

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def top_values(frame: pd.DataFrame, column: str, n: int, weight: str | None = None) -> pd.Series:
    """Per user_idx, the ``n`` most frequent (or heaviest) values of ``column`` as a list."""
    f = frame[["user_idx", column]].dropna()
    w = frame.loc[f.index, weight] if weight else pd.Series(1.0, index=f.index)
    counts = f.assign(_w=w.to_numpy()).groupby(["user_idx", column], observed=True)["_w"].sum()
    ranked = counts.reset_index().sort_values(
        ["user_idx", "_w", column], ascending=[True, False, True], kind="stable"
    )
    top = ranked.groupby("user_idx").head(n)
    return lists_by_key(top["user_idx"], top[column])


def _preferences(
    interactions: pd.DataFrame,
    purchases: pd.DataFrame,
    items: pd.DataFrame,
    columns: Mapping[str, str],
    n: int,
) -> pd.DataFrame:
    """Top attribute values per user from purchases; users without any from other events."""
    buyers = set(purchases["user_idx"].unique())
    browse = interactions[~interactions["user_idx"].isin(buyers)]
    source = pd.concat([purchases, browse], ignore_index=True)
    prefs = {}
    for name, col in columns.items():
        attrs = source.assign(_v=source["item_idx"].map(items[col]).astype("object"))
        prefs[f"pref_{name}"] = top_values(attrs, "_v", n)
    return pd.DataFrame(prefs)


def _price_index(purchases: pd.DataFrame, items: pd.DataFrame, category: str | None) -> pd.Series:
    """Mean of paid price over the median item price of the item's category (or all items)."""
    if "price" not in items.columns or purchases.empty:
        return pd.Series(dtype=float)
    if category is not None:
        median = items.groupby(category)["price"].median()
        ref = purchases["item_idx"].map(items[category]).map(median)
    else:
        ref = pd.Series(items["price"].median(), index=purchases.index)
    ratio = purchases["price"] / ref.where(ref > 0)
    return ratio.groupby(purchases["user_idx"]).mean()


def _spend_tier(monetary: pd.Series, buyers: pd.Series, quantiles: list[float]) -> pd.Series:
    """``none`` for non-buyers, else low / mid / high (more names if more quantiles)."""
    names = ["low", "mid", "high"] if len(quantiles) == 2 else [f"tier{i}" for i in range(len(quantiles) + 1)]
    tier = pd.Series("none", index=monetary.index, dtype="object")
    if buyers.any():
        edges = monetary[buyers].quantile(quantiles).to_numpy()
        tier[buyers] = np.array(names, dtype=object)[np.searchsorted(edges, monetary[buyers], "right")]
    return tier


def _habits(interactions: pd.DataFrame, n: int) -> pd.DataFrame:
    """Active hours / weekdays (when timestamps carry a time of day) and the usual channel."""
    ts = interactions["timestamp"]
    frame = interactions.assign(
        _hour=ts.dt.hour.astype("int64"), _weekday=ts.dt.day_of_week.map(dict(enumerate(WEEKDAYS)))
    )
    out = pd.DataFrame(
        {
            "active_weekdays": top_values(frame, "_weekday", n),
            "channel_preference": top_values(frame, "channel", 1).str[0],
            "n_events": frame.groupby("user_idx").size(),
        }
    )
    if bool((ts != ts.dt.normalize()).any()):
        out = out.join(top_values(frame, "_hour", n).rename("active_hours"), how="outer")
    else:  # dates only: hours unknown
        out["active_hours"] = [[] for _ in range(len(out))]
    return out


def build_profiles(
    interactions: pd.DataFrame,
    purchases: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    rfm: pd.DataFrame,
    columns: Mapping[str, str],
    cfg: ProfileConfig,
    now: pd.Timestamp,
) -> pd.DataFrame:
    """One row per user (ordered by user_idx); list columns hold top-n values."""
    demo = [c for c in cfg.demographics if c in users.columns]
    extra = [c for c in ("preferred_channel",) if c in users.columns]
    out = users[["user_idx", "user_id", *demo, *extra]].set_index("user_idx", drop=False)
    prefs = _preferences(interactions, purchases, items, columns, cfg.top_n)
    for name in columns:
        col = f"pref_{name}"
        out[col] = prefs[col].reindex(out.index) if col in prefs.columns else None
        out[col] = [v if isinstance(v, list) else [] for v in out[col]]
        out[f"top_{name}"] = [v[0] if v else None for v in out[col]]
    r = rfm.set_index("user_idx").reindex(out.index)
    price = purchases.groupby("user_idx")["price"].agg(["mean", "min", "max"]).reindex(out.index)
    buyers = r["frequency"] > 0
    out["total_spend"] = r["monetary"].astype(float)
    out["n_orders"] = r["frequency"].astype("int64")
    out["avg_order_value"] = (r["monetary"] / r["frequency"].where(buyers)).astype(float)
    out["avg_item_price"] = price["mean"]
    out["min_price"] = price["min"]
    out["max_price"] = price["max"]
    first_seen = interactions.groupby("user_idx")["timestamp"].min().reindex(out.index)
    observed_days = ((now - first_seen) / pd.Timedelta(days=1)).clip(lower=1.0)
    out["orders_per_30d"] = (r["frequency"] / observed_days * 30.0).fillna(0.0)
    out["spend_tier"] = _spend_tier(out["total_spend"], buyers, cfg.spend_tiers)
    out["price_index"] = _price_index(purchases, items, columns.get("category")).reindex(out.index)
    out["price_sensitive"] = (out["price_index"] <= cfg.price_sensitive_below).fillna(False)
    out["quality_focused"] = (out["price_index"] >= cfg.quality_focused_above).fillna(False)
    habits = _habits(interactions, cfg.top_n).reindex(out.index)
    for col in ("active_hours", "active_weekdays"):
        out[col] = [v if isinstance(v, list) else [] for v in habits[col]]
    out["top_hour"] = [int(v[0]) if v else -1 for v in out["active_hours"]]
    out["top_weekday"] = [v[0] if v else None for v in out["active_weekdays"]]
    out["channel_preference"] = habits["channel_preference"].astype("object")
    out["n_events"] = habits["n_events"].fillna(0).astype("int64")
    for col in ("price_sensitive", "quality_focused"):
        out[col] = out[col].astype(bool)
    return out.reset_index(drop=True)
