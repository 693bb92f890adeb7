"""Campaign backtest: what a plan made as of a cut-off captured of the real purchases after it.

Per plan user (``user_outcomes``): plan rows, rows bought in the holdout (hits), hit revenue and
orders, whether the user bought anything in the holdout, bought before the cut-off (prior) or
within ``retention_days`` before it (recent), and the campaign's cost for the user: the channel's
message cost if contacted, plus ``depth * hit revenue + fixed cost`` of the offer if the contacted
user converted.

KPIs (ratios of sums over users, bootstrap CIs): reach (share contacted), hit_rate (hits / rows),
conversion_rate (users with a hit), revenue (sum of hit revenue), revenue_per_user, aov (hit
revenue / hit orders), repeat_purchase_rate (prior users buying again in the holdout),
retention_rate (recent users buying again), cost, roi ((revenue - cost) / cost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.marketing.bootstrap import Stat, bootstrap_ci
from recsys.rules.config import NO_CHANNEL, NO_PROMOTION

DAY = pd.Timedelta(days=1)
KPIS = ("reach", "hit_rate", "conversion_rate", "revenue", "revenue_per_user", "aov",
        "repeat_purchase_rate", "retention_rate", "cost", "roi")
GROUPS = ("segment", "channel", "promotion")


def user_outcomes(plan: pd.DataFrame, holdout_buys: pd.DataFrame, history_buys: pd.DataFrame,
                  channel_cost: Mapping[str, float], cutoff: pd.Timestamp,
                  retention_days: float) -> pd.DataFrame:
    """One row per plan user with the columns the KPIs sum (see the module docstring).
    ``*_buys``: purchases with user_idx, item_idx, timestamp, amount, order."""
    first = plan.groupby("user_idx", sort=True).first()
    users = first.index.to_numpy()
    out = pd.DataFrame({
        "user_idx": users,
        "segment": (first["segment"].astype(str).to_numpy() if "segment" in first.columns
                    else np.full(len(users), "all", dtype=object)),
        "channel": first["channel"].astype(str).to_numpy(),
        "promotion": first["promotion"].astype(str).to_numpy(),
        "rows": plan.groupby("user_idx", sort=True).size().to_numpy(),
    })
    keys = plan[["user_idx", "item_idx"]].drop_duplicates()
    hit_buys = holdout_buys.merge(keys, on=["user_idx", "item_idx"])
    per = hit_buys.groupby("user_idx")
    hits = hit_buys[["user_idx", "item_idx"]].drop_duplicates().groupby("user_idx").size()
    out["hits"] = out["user_idx"].map(hits).fillna(0).to_numpy(float)
    out["hit_revenue"] = out["user_idx"].map(per["amount"].sum()).fillna(0.0).to_numpy(float)
    out["hit_orders"] = out["user_idx"].map(per["order"].nunique()).fillna(0).to_numpy(float)
    out["buyer"] = out["user_idx"].isin(holdout_buys["user_idx"]).to_numpy(float)
    last = history_buys.groupby("user_idx")["timestamp"].max()
    seen = out["user_idx"].map(last)
    out["prior"] = seen.notna().to_numpy(float)
    out["recent"] = (seen >= cutoff - retention_days * DAY).fillna(False).to_numpy(float)
    out["contacted"] = (out["channel"] != NO_CHANNEL).to_numpy(float)
    out["contact_cost"] = out["channel"].map(dict(channel_cost)).fillna(0.0).to_numpy(float)
    out["contact_cost"] *= out["contacted"]
    offered = (out["promotion"] != NO_PROMOTION) & (out["contacted"] > 0) & (out["hits"] > 0)
    depth, fixed = first["promotion_depth"].to_numpy(float), first["promotion_fixed_cost"].to_numpy(float)
    out["promotion_cost"] = np.where(offered, depth * out["hit_revenue"] + fixed, 0.0)
    out["cost"] = out["contact_cost"] + out["promotion_cost"]
    return out


def kpi_stats(u: pd.DataFrame) -> dict[str, Stat]:
    """Each KPI as (numerator, denominator) columns over users (denominator None: a sum)."""
    one = np.ones(len(u))
    buyer = u["buyer"].to_numpy()
    return {
        "reach": (u["contacted"].to_numpy(), one),
        "hit_rate": (u["hits"].to_numpy(), u["rows"].to_numpy(float)),
        "conversion_rate": ((u["hits"] > 0).to_numpy(float), one),
        "revenue": (u["hit_revenue"].to_numpy(), None),
        "revenue_per_user": (u["hit_revenue"].to_numpy(), one),
        "aov": (u["hit_revenue"].to_numpy(), u["hit_orders"].to_numpy()),
        "repeat_purchase_rate": (buyer * u["prior"].to_numpy(), u["prior"].to_numpy()),
        "retention_rate": (buyer * u["recent"].to_numpy(), u["recent"].to_numpy()),
        "cost": (u["cost"].to_numpy(), None),
        "roi": ((u["hit_revenue"] - u["cost"]).to_numpy(), u["cost"].to_numpy()),
    }


def kpi_table(u: pd.DataFrame, groups: Sequence[str], n_boot: int, level: float,
              seed: int) -> pd.DataFrame:
    """Long table: group_by, group, users, kpi, value, ci_low, ci_high; overall first."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[str, str, pd.DataFrame]] = [("overall", "all", u)]
    for col in groups:
        parts += [(col, str(k), g) for k, g in u.groupby(col, sort=True)]
    rows: list[dict[str, Any]] = []
    for by, name, g in parts:
        for kpi, (est, lo, hi) in bootstrap_ci(kpi_stats(g), n_boot, level, rng).items():
            rows.append({"group_by": by, "group": name, "users": len(g), "kpi": kpi,
                         "value": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def kpis_json(table: pd.DataFrame) -> dict[str, Any]:
    """Nested {group_by: {group: {kpi: {value, ci: [low, high]}, users}}}."""
    out: dict[str, Any] = {}
    for (by, name), g in table.groupby(["group_by", "group"], sort=False):
        entry: dict[str, Any] = {"users": int(g["users"].iloc[0])}
        for r in g.itertuples(index=False):
            entry[str(r.kpi)] = {"value": r.value, "ci": [r.ci_low, r.ci_high]}
        out.setdefault(str(by), {})[str(name)] = entry
    return out


def wide(table: pd.DataFrame, by: str, kpis: Sequence[str] = KPIS) -> pd.DataFrame:
    """One row per group of ``by``; cells ``value [low, high]`` (for reports)."""
    t = table[(table["group_by"] == by) & table["kpi"].isin(list(kpis))]
    cell = [f"{v:.4g} [{lo:.4g}, {hi:.4g}]" for v, lo, hi in
            zip(t["value"], t["ci_low"], t["ci_high"], strict=True)]
    out = t.assign(cell=cell).pivot(index=["group", "users"], columns="kpi", values="cell")
    return out[[k for k in kpis if k in out.columns]].reset_index().rename(columns={"group": by})
