"""Rules adjustment from campaign outcomes, in bounded steps.

Channel budgets: a channel with at least ``min_sent`` messages and ROI below its target gives up
``min(max_step, relative ROI shortfall)`` of its budget; the pool goes to channels meeting their
ROI target in proportion to their budgets, each gaining at most ``max_step`` of its budget (what
cannot be placed stays with the givers), so the total budget is unchanged.

Coupon depth: per promotion with a depth > 0 and at least ``min_sent`` sends. When the log has an
offer holdout (``offer_sent`` 0 for contacted users who got the message without the offer, at
least ``min_offer_holdout`` of them), the offer is tested against it: net revenue per user
(revenue - promotion cost) of the offered users minus that of the holdout; the depth rises by
``step`` when the difference exceeds ``offer_evidence_z`` standard errors, else it falls by
``step`` (an offer keeps its depth only while it shows that it pays for itself). Without a
holdout: ROI below target lowers the depth by ``step``; else a conversion rate below target raises
it. The result stays within [min, max].

Channel routes (``route_channels``, logs with a ``preferred`` column: 1 when the channel sent was
the user's preferred one): a logistic model of opens on the channel and whether it was preferred
(at least ``min_control`` sends of each kind) predicts the open rate of every channel for users
preferring each channel; each channel's value per send is that open rate times the incremental
revenue per open (contacted users' revenue less promotion cost, less the control users' revenue,
per open) minus its message cost, and ``channels.routes`` orders the channels by it for the users
of each preferred channel (budgets, consent and eligibility still apply in that order).

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
    offer_evidence_z: float = 1.0
    min_offer_holdout: int = 30
    route_channels: bool = False

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


def _offer_test(log: pd.DataFrame, promotion: str) -> tuple[int, int, float, float]:
    """Offered and holdout users of ``promotion`` (contacted), the difference of their mean net
    revenue (revenue - promotion cost) and its standard error."""
    t = log[(log["promotion"] == promotion) & (log["sent"] > 0)]
    net = t["revenue"] - t["promotion_cost" if "promotion_cost" in t.columns else "cost"]
    a, b = net[t["offer_sent"] > 0], net[t["offer_sent"] == 0]
    if len(a) < 2 or len(b) < 2:
        return len(a), len(b), float("nan"), float("nan")
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return len(a), len(b), float(a.mean() - b.mean()), se


def _depth_step(row: pd.Series, log: pd.DataFrame, name: str,
                s: AdjustSettings) -> tuple[float, str] | None:
    """+1 / -1 step and why, or None for no change."""
    if "offer_sent" in log.columns:
        n_offer, n_hold, diff, se = _offer_test(log, name)
        if n_hold >= s.min_offer_holdout and n_offer >= s.min_sent and np.isfinite(diff):
            if diff > s.offer_evidence_z * se:
                return 1.0, (f"offer pays: net revenue per user {diff:+.3g} vs message only "
                             f"(se {se:.3g}, {n_offer} offered / {n_hold} holdout)")
            return -1.0, (f"offer not shown to pay: net revenue per user {diff:+.3g} vs message "
                          f"only, needs > {s.offer_evidence_z:g} se {se:.3g} ({n_offer} offered "
                          f"/ {n_hold} holdout)")
    if pd.isna(row[s.roi_metric]):
        return None
    if row[s.roi_metric] < s.targets["roi"]:
        return -1.0, f"{s.roi_metric} {row[s.roi_metric]:.3g} < target {s.targets['roi']:g}"
    if row["conversion_rate"] < s.targets["conversion_rate"]:
        return 1.0, (f"conversion {row['conversion_rate']:.3g} < target "
                     f"{s.targets['conversion_rate']:g}")
    return None


def _tune_depths(raw: dict[str, Any], table: pd.DataFrame, log: pd.DataFrame, s: AdjustSettings,
                 changes: list[str]) -> None:
    for i, promo in enumerate(raw.get("promotions") or []):
        name, depth = promo["name"], float(promo["depth"])
        if name not in table.index or depth <= 0 or table.loc[name, "sent"] < s.min_sent:
            continue
        step = _depth_step(table.loc[name], log, name, s)
        if step is None:
            continue
        new = round(float(np.clip(depth + step[0] * s.depth_step, s.depth_min, s.depth_max)), 6)
        if new != depth:
            raw["promotions"][i]["depth"] = new
            changes.append(f"promotions[{i}] {name!r}.depth: {depth:g} -> {new:g} ({step[1]})")


def open_model(log: pd.DataFrame, channels: list[str], min_each: int) -> np.ndarray | None:
    """P(open) per (channel sent, preferred 0/1) from a logistic model of the contacted rows on
    channel and preference (shape: channels x 2), or None with too few sends of either kind."""
    from sklearn.linear_model import LogisticRegression

    t = log[(log["sent"] > 0) & log["channel"].isin(channels)]
    pref = t["preferred"].to_numpy(float)
    if (pref > 0).sum() < min_each or (pref == 0).sum() < min_each or t["opened"].nunique() < 2:
        return None
    onehot = (t["channel"].to_numpy()[:, None] == np.array(channels)[None, :]).astype(float)
    model = LogisticRegression(C=1e4, max_iter=2000, fit_intercept=False).fit(
        np.column_stack([onehot, pref]), t["opened"].to_numpy())
    grid = np.eye(len(channels))
    return np.column_stack([model.predict_proba(np.column_stack([grid, np.full(len(grid), v)]))[:, 1]
                            for v in (0.0, 1.0)])


def value_per_open(log: pd.DataFrame) -> tuple[float, float]:
    """Incremental net revenue per open: (contacted users' revenue - promotion cost, less the
    control users' revenue) per contacted user, over the open rate; and its standard error."""
    t, c = log[log["sent"] > 0], log[log["group"] == "control"]
    if len(t) < 2 or len(c) < 2 or t["opened"].sum() == 0:
        return float("nan"), float("nan")
    net = t["revenue"] - (t["promotion_cost"] if "promotion_cost" in t.columns else 0.0)
    rate = float(t["opened"].mean())
    se = float(np.sqrt(net.var(ddof=1) / len(t) + c["revenue"].var(ddof=1) / len(c)))
    return float(net.mean() - c["revenue"].mean()) / rate, se / rate


def _route_channels(raw: dict[str, Any], log: pd.DataFrame, s: AdjustSettings,
                    changes: list[str]) -> None:
    channels = list(raw["channels"]["order"])
    if "preferred" not in log.columns or "group" not in log.columns:
        return
    q = open_model(log, channels, s.min_control)
    per_open, se = value_per_open(log)
    if q is None or not np.isfinite(per_open):
        return
    if per_open <= s.offer_evidence_z * se:
        changes.append(f"channel routes unchanged: incremental revenue per open {per_open:.3g} "
                       f"not above {s.offer_evidence_z:g} se {se:.3g}")
        return
    cost = np.array([float(raw["channels"]["options"][ch]["cost"]) for ch in channels])
    routes = dict(raw["channels"].get("routes") or {})
    for j, p in enumerate(channels):
        value = q[:, 0] * per_open - cost
        value[j] = q[j, 1] * per_open - cost[j]
        route = [channels[k] for k in np.argsort(-value, kind="stable")]
        old = routes.get(p, [p, *[ch for ch in channels if ch != p]])
        if route != list(old):
            routes[p] = route
            changes.append(f"channels.routes.{p}: {list(old)} -> {route} (value per send "
                           + ", ".join(f"{channels[k]} {value[k]:.3g}" for k in range(len(channels)))
                           + f"; {per_open:.3g} incremental revenue per open)")
    if routes:
        raw["channels"]["routes"] = routes


def adjust_rules(rules: RulesConfig, log: pd.DataFrame, s: AdjustSettings,
                 earlier: pd.DataFrame | None = None) -> Adjustment:
    """Adjusted copy of ``rules`` from a validated outcome log; ``earlier`` (validated logs of
    earlier campaigns) joins ``log`` for the channel routes, whose inputs (open rates per channel
    and preference, value per open) do not depend on the rules."""
    raw = copy.deepcopy(rules.raw)
    changes: list[str] = []
    if s.roi_metric == "incremental_roi" and "group" not in log.columns:
        raise ConfigError("adjust.roi_metric=incremental_roi needs a group column (treatment / "
                          "control) in the outcome log")
    channels = rates(log, "channel", s.min_control)
    promotions = rates(log, "promotion", s.min_control)
    _shift_budgets(raw, channels, s, changes)
    _tune_depths(raw, promotions, log, s, changes)
    if s.route_channels:
        pooled = log if earlier is None else pd.concat([earlier, log], ignore_index=True)
        _route_channels(raw, pooled, s, changes)
    adjusted = parse_rules(raw, rules.source)
    return Adjustment(adjusted, changes, channels, promotions,
                      rates(log, "segment", s.min_control))
