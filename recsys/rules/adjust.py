"""Rules adjustment from campaign outcomes, in bounded steps.

Channel budgets: a channel with at least ``min_sent`` messages and ROI below its target gives up
``min(max_step, relative ROI shortfall)`` of its budget; the pool goes to channels meeting their
ROI target in proportion to their budgets, each gaining at most ``max_step`` of its budget (what
cannot be placed stays with the givers), so the total budget is unchanged.

Coupon depth: per promotion with a depth > 0 and at least ``min_sent`` sends, ROI below target
lowers the depth by ``step``; else a conversion rate below target raises it; the result stays
within [min, max].

With a no-contact control group in the log (``group`` = control rows, not sent), ROI can be
measured on incremental revenue (``roi_metric: incremental_roi``): the revenue of the contacted
users minus what as many control users of the same channel / promotion spent (the pooled control
where a group has fewer than ``min_control`` control users).
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
ROI_METRICS = ("roi", "incremental_roi")


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
    roi_metric: str = "roi"
    min_control: int = 30

    def __post_init__(self) -> None:
        missing = [m for m in METRICS if m not in self.targets]
        if missing:
            raise ConfigError(f"adjust.targets lacks {missing[0]!r}")
        for where, targets in [("targets", self.targets),
                               *((f"targets.per_channel.{c}", t) for c, t in self.per_channel.items())]:
            unknown = sorted(set(targets) - set(METRICS))
            if unknown:
                raise ConfigError(f"adjust.{where}.{unknown[0]}: not a known KPI "
                                  f"(known: {', '.join(METRICS)})")
        if self.roi_metric not in ROI_METRICS:
            raise ConfigError(f"adjust.roi_metric must be one of {ROI_METRICS}, "
                              f"got {self.roi_metric!r}")
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


def _roi(gain: pd.Series, cost: pd.Series) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = (gain - cost) / cost
    return np.where(cost > 0, roi, np.where(gain > 0, np.inf, 0.0))


def rates(log: pd.DataFrame, by: str, min_control: int = 30) -> pd.DataFrame:
    """Sums and open rate, conversion rate, ROI ((revenue - cost) / cost) per ``by`` over the
    contacted rows; with control rows also control_users, control_conversion_rate and
    incremental_roi (see the module docstring)."""
    control = log["group"] == "control" if "group" in log.columns else pd.Series(False, log.index)
    treated = log[~control]
    g = treated.groupby(by)[["sent", "opened", "converted", "revenue", "cost"]].sum()
    sent = g["sent"].where(g["sent"] > 0)
    g["open_rate"] = (g["opened"] / sent).fillna(0.0)
    g["conversion_rate"] = (g["converted"] / sent).fillna(0.0)
    g["roi"] = _roi(g["revenue"], g["cost"])
    held = log[control]
    if held.empty:
        if "group" in log.columns:  # a controlled log whose control is empty: nothing to compare
            for col in ("control_users", "control_conversion_rate", "incremental_revenue",
                        "incremental_roi"):
                g[col] = np.nan
        return g
    c = held.groupby(by).agg(control_users=("converted", "size"),
                             control_converted=("converted", "sum"),
                             control_revenue=("revenue", "sum")).reindex(g.index, fill_value=0)
    pooled = held["revenue"].sum() / len(held)
    enough = c["control_users"] >= min_control
    per_user = np.where(enough, c["control_revenue"] / c["control_users"].clip(lower=1), pooled)
    g["control_users"] = c["control_users"]
    g["control_conversion_rate"] = (c["control_converted"] / c["control_users"].where(enough))
    g["incremental_revenue"] = g["revenue"] - g["sent"] * per_user
    g["incremental_roi"] = _roi(g["incremental_revenue"], g["cost"])
    return g


def _shift_budgets(raw: dict[str, Any], table: pd.DataFrame, s: AdjustSettings,
                   changes: list[str]) -> None:
    options = raw["channels"]["options"]
    give: dict[str, float] = {}
    take: dict[str, float] = {}
    for ch, row in table.iterrows():
        name, budget = str(ch), float(options[str(ch)]["budget"])
        target = s.target(name, "roi")
        if row["sent"] < s.min_sent or pd.isna(row[s.roi_metric]):
            continue
        if row[s.roi_metric] < target:
            shortfall = (target - row[s.roi_metric]) / max(abs(target), 1e-9)
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
    roi = float(table.loc[name, s.roi_metric])
    changes.append(f"channels.options.{name}.budget: {old:g} -> {new:g} ({s.roi_metric} {roi:.3g}, "
                   f"target {s.target(name, 'roi'):g})")


def _tune_depths(raw: dict[str, Any], table: pd.DataFrame, s: AdjustSettings,
                 changes: list[str]) -> None:
    for i, promo in enumerate(raw.get("promotions") or []):
        name, depth = promo["name"], float(promo["depth"])
        if name not in table.index or depth <= 0 or table.loc[name, "sent"] < s.min_sent:
            continue
        row = table.loc[name]
        if pd.isna(row[s.roi_metric]):
            continue
        if row[s.roi_metric] < s.targets["roi"]:
            new, why = depth - s.depth_step, (f"{s.roi_metric} {row[s.roi_metric]:.3g} < target "
                                              f"{s.targets['roi']:g}")
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
    if s.roi_metric == "incremental_roi" and "group" not in log.columns:
        raise ConfigError("adjust.roi_metric=incremental_roi needs a group column (treatment / "
                          "control) in the outcome log")
    channels = rates(log, "channel", s.min_control)
    promotions = rates(log, "promotion", s.min_control)
    _shift_budgets(raw, channels, s, changes)
    _tune_depths(raw, promotions, s, changes)
    adjusted = parse_rules(raw, rules.source)
    return Adjustment(adjusted, changes, channels, promotions,
                      rates(log, "segment", s.min_control))
