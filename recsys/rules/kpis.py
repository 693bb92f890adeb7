"""Business KPIs of a campaign plan on the holdout period (overall and per segment).

A *hit* is a plan row (user, item) that the user bought in the holdout.

* hit_revenue: holdout spend on hit items; aov_hits: hit revenue per hit order (user, day).
* repeat_purchase_rate: among recommended users who had bought before (``frequency`` > 0 in
  ``users_segments``), the share that bought anything in the holdout.
* promotion_cost: for users with a hit, ``depth * hit revenue + fixed_cost`` of their offer.
* channel_allocation: users per channel; rule_hit_rate: hit rate of the rows each rule fired on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.arrays import member
from recsys.mining.inputs import purchases_with_amount


def _group_kpis(plan: pd.DataFrame, hits: pd.DataFrame, bought: set[int],
                prior: set[int]) -> dict[str, Any]:
    users = plan["user_idx"].unique()
    rows_hit = plan["_hit"].to_numpy()
    converted = plan.loc[rows_hit, "user_idx"].unique()
    revenue = float(hits["amount"].sum())
    orders = int(hits[["user_idx", "order"]].drop_duplicates().shape[0])
    returning = [u for u in users if u in prior]
    return {
        "users": len(users),
        "recommendations": len(plan),
        "hit_rate": float(rows_hit.mean()) if len(plan) else float("nan"),
        "user_conversion_rate": len(converted) / len(users) if len(users) else float("nan"),
        "hit_revenue": revenue,
        "hit_orders": orders,
        "aov_hits": revenue / orders if orders else 0.0,
        "repeat_purchase_rate": (sum(u in bought for u in returning) / len(returning)
                                 if returning else float("nan")),
    }


def business_kpis(
    plan: pd.DataFrame,
    holdout: pd.DataFrame,
    items: pd.DataFrame,
    users_segments: pd.DataFrame,
    purchase_events: Sequence[str],
) -> dict[str, Any]:
    """KPIs of ``plan`` (apply_rules recommendations) against the ``purchase_events`` of
    ``holdout`` (amount = price * quantity, item price where missing)."""
    buys = purchases_with_amount(holdout, items, purchase_events)
    keys = plan[["user_idx", "item_idx"]]
    hits = buys.merge(keys.drop_duplicates(), on=["user_idx", "item_idx"])
    n = np.int64(len(items))
    plan_keys = plan["user_idx"].to_numpy(np.int64) * n + plan["item_idx"].to_numpy(np.int64)
    hit_keys = hits["user_idx"].to_numpy(np.int64) * n + hits["item_idx"].to_numpy(np.int64)
    plan = plan.assign(_hit=member(hit_keys, plan_keys))
    bought = set(buys["user_idx"].unique())
    prior = set(users_segments.loc[users_segments["frequency"] > 0, "user_idx"])
    out = _group_kpis(plan, hits, bought, prior)

    per_user = plan.groupby("user_idx").first()
    user_rev = hits.groupby("user_idx")["amount"].sum().reindex(per_user.index, fill_value=0.0)
    offered = per_user["promotion"] != "none"
    converted = user_rev > 0
    cost = (per_user["promotion_depth"] * user_rev + per_user["promotion_fixed_cost"])
    out["promotion_cost"] = float(cost[offered & converted].sum())
    out["expected_promotion_cost"] = float(per_user["expected_promotion_cost"].sum())
    out["offers"] = {str(k): int(v) for k, v in per_user["promotion"].astype(str).value_counts().items()}
    alloc = per_user["channel"].astype(str).value_counts()
    out["channel_allocation"] = {
        str(c): {"users": int(n), "share": float(n / len(per_user)),
                 "user_conversion_rate": float(converted[per_user["channel"] == c].mean())}
        for c, n in alloc.items()
    }
    fired = plan[["rules_fired", "_hit"]].assign(rule=plan["rules_fired"].str.split(";"))
    fired = fired.explode("rule")
    fired = fired[fired["rule"].fillna("") != ""]
    out["rule_hit_rate"] = {
        str(r): {"rows": len(g), "hit_rate": float(g["_hit"].mean())}
        for r, g in fired.groupby("rule")
    }
    seg = users_segments.set_index("user_idx")["segment"]
    plan_seg = plan.assign(_segment=plan["user_idx"].map(seg).fillna("unknown"))
    hits_seg = hits.assign(_segment=hits["user_idx"].map(seg).fillna("unknown"))
    out["per_segment"] = {
        str(s): _group_kpis(g, hits_seg[hits_seg["_segment"] == s], bought, prior)
        for s, g in plan_seg.groupby("_segment")
    }
    return out
