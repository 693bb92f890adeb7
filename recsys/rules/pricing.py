"""Price suggestions per item: demand / stock rules within guardrails."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.rules.config import RulesConfig
from recsys.rules.frame import EvalFrame

NO_PRICING = "none"


def price_items(frame: EvalFrame, cfg: RulesConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Item-level table: pricing_rule, price_factor, suggested_price, price_guardrail.

    The first matching rule (lowest priority number) sets the factor, clipped to
    [min_factor, max_factor]; a markdown never goes below ``cost * (1 + min_margin)`` (cost from
    a ``cost`` column, or price * (1 - margin)) and never raises the price.
    """
    items = frame.ctx.items
    n = len(items)
    rule_id = np.full(n, -1, dtype=np.int64)
    for i, rule in sorted(enumerate(cfg.pricing), key=lambda p: p[1].priority):
        rule_id[(rule_id < 0) & frame.mask(rule.when, "item")] = i
    g = cfg.guardrails
    factor = np.array([r.factor for r in cfg.pricing] + [1.0])[rule_id]
    factor = np.clip(factor, g.min_factor, g.max_factor)
    price = items["price"].to_numpy(dtype=float, na_value=np.nan)
    if "cost" in items.columns:
        cost = items["cost"].to_numpy(dtype=float, na_value=np.nan)
    else:
        cost = price * (1.0 - items["margin"].to_numpy(dtype=float, na_value=np.nan))
    suggested = price * factor
    floor = cost * (1.0 + g.min_margin)
    guarded = (factor < 1.0) & np.isfinite(floor) & (suggested < floor)
    suggested = np.where(guarded, np.minimum(np.maximum(suggested, floor), price), suggested)
    names = [r.name for r in cfg.pricing] + [NO_PRICING]
    with np.errstate(invalid="ignore", divide="ignore"):
        effective = np.where(price > 0, suggested / price, factor)
    out = pd.DataFrame(
        {"pricing_rule": pd.Categorical.from_codes(np.where(rule_id < 0, len(names) - 1, rule_id),
                                                   categories=names),
         "price_factor": effective, "suggested_price": suggested,
         "price_guardrail": pd.Categorical(np.where(guarded, "min_margin", ""))}
    )
    counts = {r.name: int((rule_id == i).sum()) for i, r in enumerate(cfg.pricing)}
    return out, counts
