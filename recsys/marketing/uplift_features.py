"""Per-user inputs of the uplift model that the user table lacks: what the campaign plans for the
user and how the user's history relates to it, all known at the cut-off.

A contact's effect depends on whether the message is opened (channel, the user's preferred channel,
send hour against the user's active hour) and on how likely the user is to buy the planned items
at all (activity, taste for them, their price). From the plan: number of items, retrieval score
sum and maximum, mean log price, whether the channel is the user's preferred one and the circular
distance in hours between send time and the user's active hour. From the history before the
cut-off (every event: views, clicks, carts, purchases): log event count, the share of purchases
paid below the item's list price, and per configured item attribute (category, colour, ...) the
mean over the planned items of the log of the user's smoothed share of events on the item's value
relative to uniform, log((n_v + a p_v) / (n + a) * V) with p_v the attribute's overall share,
plus the log-sum-exp and maximum over items of those logs summed over attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.rules.config import NO_CHANNEL


@dataclass(frozen=True)
class PlanFeatureConfig:
    """uplift.yaml ``features``: the plan / history part."""

    affinity_columns: tuple[str, ...]
    affinity_prior: float
    hour_column: str
    log_numeric: tuple[str, ...]


def _affinity(plan: pd.DataFrame, history: pd.DataFrame, items: pd.DataFrame, column: str,
              prior: float) -> np.ndarray:
    """Per plan row: log of the user's smoothed event share on the item's ``column`` value."""
    if column not in items.columns:
        raise DataError("item table lacks an uplift affinity column", file="items", column=column)
    codes, values = pd.factorize(items[column].astype(str))
    v = len(values)
    hist_v = codes[history["item_idx"].to_numpy(np.int64)]
    overall = np.bincount(hist_v, minlength=v) / max(len(hist_v), 1)
    per_user = pd.Series(1.0, index=pd.MultiIndex.from_arrays(
        [history["user_idx"].to_numpy(np.int64), hist_v])).groupby(level=[0, 1]).sum()
    n_user = history.groupby("user_idx").size()
    users = plan["user_idx"].to_numpy(np.int64)
    row_v = codes[plan["item_idx"].to_numpy(np.int64)]
    n_uv = per_user.reindex(pd.MultiIndex.from_arrays([users, row_v])).fillna(0.0).to_numpy()
    n_u = n_user.reindex(users).fillna(0.0).to_numpy()
    return np.log((n_uv + prior * overall[row_v]) / (n_u + prior) * v)


def plan_features(plan: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
                  history: pd.DataFrame, cfg: PlanFeatureConfig) -> pd.DataFrame:
    """One row per user_id of the plan's contacted users (see the module docstring); ``users``
    holds user_idx, user_id, preferred_channel, the hour column and ``cfg.log_numeric``; ``items``
    holds price and the affinity columns; ``history`` user_idx, item_idx, price (events before
    the cut-off)."""
    for col in ("preferred_channel", cfg.hour_column, *cfg.log_numeric):
        if col not in users.columns:
            raise DataError("user table lacks an uplift feature column", file="users", column=col)
    rows = plan[plan["channel"].astype(str) != NO_CHANNEL]
    g = rows.groupby(rows["user_id"].astype(str), sort=False)
    first = g.head(1).set_index(rows.loc[g.head(1).index, "user_id"].astype(str))
    u = users.set_index(users["user_idx"].to_numpy(np.int64)).loc[first["user_idx"].to_numpy()]
    send = pd.to_datetime(first["send_time"]).dt.hour.to_numpy(float)
    gap = np.abs(send - pd.to_numeric(u[cfg.hour_column], errors="coerce").to_numpy(float)) % 24
    out = pd.DataFrame({
        "plan_items": g.size(),
        "plan_score_sum": g["score_before"].sum(),
        "plan_score_max": g["score_before"].max(),
        "plan_log_price": g["price"].apply(lambda p: float(np.log(p.clip(lower=1e-6)).mean())),
        "preferred_sent": (first["channel"].astype(str).to_numpy()
                           == u["preferred_channel"].astype(str).to_numpy()).astype(float),
        "hour_gap": np.minimum(gap, 24 - gap),
    }, index=first.index)
    hist = history[["user_idx", "item_idx", "price"]]
    events = hist.groupby("user_idx").size().reindex(u.index).fillna(0.0).to_numpy()
    out["log_events"] = np.log1p(events)
    buys = history[history["event"] == "purchase"] if "event" in history.columns else hist
    list_price = items["price"].to_numpy(float)[buys["item_idx"].to_numpy(np.int64)]
    below = pd.Series(buys["price"].to_numpy(float) < 0.99 * list_price, index=buys.index)
    out["discount_share"] = below.groupby(buys["user_idx"]).mean().reindex(u.index).to_numpy()
    total = np.zeros(len(rows))
    for col in cfg.affinity_columns:
        a = _affinity(rows, hist, items, col, cfg.affinity_prior)
        out[f"affinity_{col}"] = pd.Series(a, index=rows.index).groupby(
            rows["user_id"].astype(str)).mean().reindex(out.index)
        total += a
    if cfg.affinity_columns:
        by = pd.Series(total, index=rows.index).groupby(rows["user_id"].astype(str))
        out["affinity_lse"] = by.apply(lambda s: float(np.log(np.exp(s).sum()))).reindex(out.index)
        out["affinity_max"] = by.max().reindex(out.index)
    for col in cfg.log_numeric:
        out[f"log_{col}"] = np.log1p(pd.to_numeric(u[col], errors="coerce").clip(lower=0)
                                     ).to_numpy(float)
    return out


def interaction_columns(columns: Sequence[str], prefixes: Sequence[str]) -> list[int]:
    """Positions of the feature columns whose name starts with one of ``prefixes``."""
    return [j for j, c in enumerate(columns) if any(c.startswith(p) for p in prefixes)]
