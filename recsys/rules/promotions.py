"""Promotion per user (first matching rule by priority) under the campaign budget cap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.rules.config import NO_PROMOTION, RulesConfig
from recsys.rules.frame import EvalFrame


def assign_promotions(
    frame: EvalFrame, cfg: RulesConfig, users: np.ndarray, mean_price: np.ndarray
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per entry of ``users`` (user positions, highest value first).

    The offer's expected cost is ``expected_redemption * (depth * mean_price + fixed_cost)``;
    walking down the value order, offers stop where the cumulative cost would pass the budget.
    """
    n = len(users)
    rule_id = np.full(n, -1, dtype=np.int64)
    for i, rule in sorted(enumerate(cfg.promotions), key=lambda p: p[1].priority):
        hit = frame.mask(rule.when, "user")[users]
        rule_id[(rule_id < 0) & hit] = i
    names = [r.name for r in cfg.promotions] + [NO_PROMOTION]
    offers = np.array([r.offer for r in cfg.promotions] + [NO_PROMOTION], dtype=object)
    depth = np.array([r.depth for r in cfg.promotions] + [0.0])[rule_id]
    fixed = np.array([r.fixed_cost for r in cfg.promotions] + [0.0])[rule_id]
    price = np.nan_to_num(mean_price, nan=0.0)
    cost = np.where(rule_id >= 0, cfg.caps.expected_redemption * (depth * price + fixed), 0.0)
    capped = np.zeros(n, dtype=bool)
    if cfg.caps.campaign_budget is not None:
        capped = (np.cumsum(cost) > cfg.caps.campaign_budget + 1e-12) & (rule_id >= 0)
        rule_id = np.where(capped, -1, rule_id)
        cost, depth, fixed = (np.where(capped, 0.0, a) for a in (cost, depth, fixed))
    out = pd.DataFrame(
        {"promotion": pd.Categorical.from_codes(np.where(rule_id < 0, len(names) - 1, rule_id),
                                                categories=names),
         "promotion_offer": pd.Categorical(offers[rule_id]),
         "promotion_depth": depth, "promotion_fixed_cost": fixed,
         "expected_promotion_cost": cost, "budget_capped": capped}
    )
    counts = {r.name: int((rule_id == i).sum()) for i, r in enumerate(cfg.promotions)}
    counts["campaign_budget"] = int(capped.sum())
    return out, counts
