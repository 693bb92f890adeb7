"""Rules adjustment from campaign outcomes, in bounded steps.

Channel budgets: a channel with at least ``min_sent`` messages and ROI below its target gives up
``min(max_step, relative ROI shortfall)`` of its budget; the pool goes to channels meeting their
ROI target in proportion to their budgets, each gaining at most ``max_step`` of its budget (what
cannot be placed stays with the givers), so the total budget is unchanged.

Coupon depth: per promotion with a depth > 0 and at least ``min_sent`` sends, ROI below target
lowers the depth by ``step``; else a conversion rate below target raises it; the result stays
within [min, max].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import ConfigError
from recsys.rules.config import RulesConfig, parse_rules

METRICS = ("open_rate", "conversion_rate", "roi")


@dataclass(frozen=True)
class AdjustSettings:
    """Targets and step bounds (conf/adjust.yaml)."""

    targets: dict[str, float]
    per_channel: dict[str, dict[str, float]]
    min_sent: int
    max_step: float
    depth_min: float
    depth_max: float
    depth_step: float

    def __post_init__(self) -> None:
        missing = [m for m in METRICS if m not in self.targets]
        if missing:
            raise ConfigError(f"adjust.targets lacks {missing[0]!r}")
        if not 0.0 < self.max_step <= 1.0:
            raise ConfigError(f"adjust.max_step must be in (0, 1], got {self.max_step}")
        if not 0.0 <= self.depth_min <= self.depth_max < 1.0 or self.depth_step <= 0:
            raise ConfigError("adjust.coupon_depth needs 0 <= min <= max < 1 and step > 0")

    def target(self, channel: str, metric: str) -> float:
        return float(self.per_channel.get(channel, {}).get(metric, self.targets[metric]))


@dataclass
class Adjustment:
    """The adjusted rules, the changes made and the metric tables behind them."""

    rules: RulesConfig
    changes: list[str] = field(default_factory=list)
    channels: pd.DataFrame = field(default_factory=pd.DataFrame)
    promotions: pd.DataFrame = field(default_factory=pd.DataFrame)
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)


def rates(log: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sums and open rate, conversion rate, ROI ((revenue - cost) / cost) per ``by``."""
    g = log.groupby(by)[["sent", "opened", "converted", "revenue", "cost"]].sum()
    sent = g["sent"].where(g["sent"] > 0)
    g["open_rate"] = (g["opened"] / sent).fillna(0.0)
    g["conversion_rate"] = (g["converted"] / sent).fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = (g["revenue"] - g["cost"]) / g["cost"]
    g["roi"] = np.where(g["cost"] > 0, roi, np.where(g["revenue"] > 0, np.inf, 0.0))
    return g


def _shift_budgets(raw: dict[str, Any], table: pd.DataFrame, s: AdjustSettings,
                   changes: list[str]) -> None:
    options = raw["channels"]["options"]
    give: dict[str, float] = {}
    take: dict[str, float] = {}
    for ch, row in table.iterrows():
        name, budget = str(ch), float(options[str(ch)]["budget"])
        target = s.target(name, "roi")
        if row["sent"] < s.min_sent:
            continue
        if row["roi"] < target:
            shortfall = (target - row["roi"]) / max(abs(target), 1e-9)
            give[name] = budget * min(s.max_step, float(np.clip(shortfall, 0.0, 1.0)))
        else:
            take[name] = budget * s.max_step
    pool, room = sum(give.values()), sum(take.values())
    moved = min(pool, room)
    if moved <= 0:
        if give:
            changes.append(f"channels below their ROI target ({', '.join(sorted(give))}) but no "
                           "channel meets its target: budgets unchanged")
        return
    for name, amount in give.items():
        _set_budget(options, name, -amount * moved / pool, table, s, changes)
    for name, amount in take.items():
        _set_budget(options, name, amount * moved / room, table, s, changes)


def _set_budget(options: dict[str, Any], name: str, delta: float, table: pd.DataFrame,
                s: AdjustSettings, changes: list[str]) -> None:
    old = float(options[name]["budget"])
    new = round(old + delta, 6)
    options[name]["budget"] = new
    roi = float(table.loc[name, "roi"])
    changes.append(f"channels.options.{name}.budget: {old:g} -> {new:g} (ROI {roi:.3g}, "
                   f"target {s.target(name, 'roi'):g})")


def _tune_depths(raw: dict[str, Any], table: pd.DataFrame, s: AdjustSettings,
                 changes: list[str]) -> None:
    for i, promo in enumerate(raw.get("promotions") or []):
        name, depth = promo["name"], float(promo["depth"])
        if name not in table.index or depth <= 0 or table.loc[name, "sent"] < s.min_sent:
            continue
        row = table.loc[name]
        if row["roi"] < s.targets["roi"]:
            new, why = depth - s.depth_step, f"ROI {row['roi']:.3g} < target {s.targets['roi']:g}"
        elif row["conversion_rate"] < s.targets["conversion_rate"]:
            new, why = depth + s.depth_step, (f"conversion {row['conversion_rate']:.3g} < target "
                                              f"{s.targets['conversion_rate']:g}")
        else:
            continue
        new = round(float(np.clip(new, s.depth_min, s.depth_max)), 6)
        if new != depth:
            raw["promotions"][i]["depth"] = new
            changes.append(f"promotions[{i}] {name!r}.depth: {depth:g} -> {new:g} ({why})")


def adjust_rules(rules: RulesConfig, log: pd.DataFrame, s: AdjustSettings) -> Adjustment:
    """Adjusted copy of ``rules`` from a validated outcome log."""
    raw = copy.deepcopy(rules.raw)
    changes: list[str] = []
    channels = rates(log, "channel")
    promotions = rates(log, "promotion")
    _shift_budgets(raw, channels, s, changes)
    _tune_depths(raw, promotions, s, changes)
    adjusted = parse_rules(raw, rules.source)
    return Adjustment(adjusted, changes, channels, promotions, rates(log, "segment"))
