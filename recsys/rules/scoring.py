"""Row-level steps: social-image privacy, score transform, filters and boosts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.arrays import member
from recsys.rules.config import BoostRule, FilterRule, RulesConfig
from recsys.rules.crosssell import cross_sell_mask
from recsys.rules.frame import EvalFrame

DAY = pd.Timedelta(days=1)


@dataclass
class Scored:
    """Per candidate row: kept?, removing filter (-1 none), scores, boost bit mask."""

    keep: np.ndarray
    removed_by: np.ndarray
    score_before: np.ndarray
    final: np.ndarray
    fired: np.ndarray
    social: np.ndarray
    social_used: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def minmax_per_user(score: np.ndarray, user_pos: np.ndarray) -> np.ndarray:
    """(s - min) / (max - min) within each user; 1.0 where a user's scores are all equal."""
    groups = pd.Series(score).groupby(user_pos)
    lo = groups.transform("min").to_numpy()
    hi = groups.transform("max").to_numpy()
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (score - lo) / span, 1.0)


def already_bought(frame: EvalFrame, rule: FilterRule) -> np.ndarray:
    """Rows whose (user, item) is in the purchase history (within ``lookback_days`` if set)."""
    hist = frame.ctx.history
    if rule.lookback_days is not None:
        hist = hist[hist["timestamp"] >= frame.ctx.now - rule.lookback_days * DAY]
    n = np.int64(len(frame.ctx.items))
    keys = hist["user_idx"].to_numpy(np.int64) * n + hist["item_idx"].to_numpy(np.int64)
    return member(keys, frame.user_pos * n + frame.item_pos)


def filter_mask(frame: EvalFrame, rule: FilterRule) -> np.ndarray:
    if rule.kind == "already_bought":
        return already_bought(frame, rule)
    assert rule.when is not None
    return frame.mask(rule.when)


def boost_mask(frame: EvalFrame, rule: BoostRule) -> np.ndarray:
    if rule.kind == "association":
        assert rule.level is not None and rule.min_lift is not None
        return cross_sell_mask(frame.ctx, frame.user_pos, frame.item_pos, rule.level, rule.min_lift)
    if rule.when is None:
        return np.ones(len(frame.rows), dtype=bool)
    return frame.mask(rule.when)


def apply_boost(
    final: np.ndarray, frame: EvalFrame, rule: BoostRule, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Boosted scores and the rows the boost changed (add_column: where it adds a nonzero)."""
    if rule.multiply is not None:
        return np.where(mask, final * rule.multiply, final), mask
    if rule.add is not None:
        return final + np.where(mask, rule.add, 0.0), mask
    assert rule.add_column is not None and rule.weight is not None
    col = frame.values(rule.add_column, "row").to_numpy(dtype=float, na_value=np.nan)
    extra = np.where(mask & np.isfinite(col), rule.weight * np.nan_to_num(col), 0.0)
    return final + extra, mask & (extra != 0.0)


def score_rows(frame: EvalFrame, cfg: RulesConfig) -> Scored:
    """Privacy first (no social-image signal without consent), then transform, filters, boosts."""
    rows = frame.rows
    raw = rows["score"].to_numpy(dtype=float)
    social_raw = rows["social_score"].to_numpy(dtype=float)
    consent = frame.ctx.users["social_image_consent"].to_numpy(dtype=bool)[frame.user_pos]
    social = np.where(consent, social_raw, 0.0)
    effective = raw - social_raw + social
    base = minmax_per_user(effective, frame.user_pos) if cfg.score_transform != "none" else effective
    counts: dict[str, int] = {}
    removed_by = np.full(len(rows), -1, dtype=np.int16)
    for i, rule in enumerate(cfg.filters):
        if not rule.enabled:
            continue
        m = filter_mask(frame, rule)
        counts[rule.name] = int(m.sum())
        removed_by[(removed_by < 0) & m] = i
    keep = removed_by < 0
    final = base.copy()
    fired = np.zeros(len(rows), dtype=np.int64)
    for bit, boost in enumerate(cfg.boosts):
        final, m = apply_boost(final, frame, boost, boost_mask(frame, boost))
        fired |= m.astype(np.int64) << np.int64(bit)
        counts[boost.name] = int((m & keep).sum())
    return Scored(keep, removed_by, raw, final, fired, social, consent, counts)
