"""``apply_rules``: candidates + context + rules -> ranked, explained per-user plan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.rules.channels import assign_channels
from recsys.rules.config import RulesConfig
from recsys.rules.context import RuleContext
from recsys.rules.explain import ExplainInputs, build_explanations
from recsys.rules.frame import EvalFrame
from recsys.rules.pricing import price_items
from recsys.rules.promotions import assign_promotions
from recsys.rules.ranking import rank_rows, runs
from recsys.rules.scoring import score_rows
from recsys.rules.validate import validate_rules

CANDIDATE_COLUMNS = ("user_idx", "item_idx", "score", "rank", "behaviour_score", "image_score",
                     "social_score")


@dataclass(frozen=True)
class RuleResult:
    """``recommendations``: the plan, one row per (user, item), best first per user;
    ``rule_counts``: rows (filters, boosts, caps, pricing) or users (promotions, channels) per
    rule; ``removed``: filtered rows with the first filter that removed them."""

    recommendations: pd.DataFrame
    rule_counts: dict[str, int]
    removed: pd.DataFrame


def check_candidates(candidates: pd.DataFrame, source: str | None) -> None:
    """Required columns present and scores finite."""
    for col in CANDIDATE_COLUMNS:
        if col not in candidates.columns:
            raise DataError("candidates lack a required column", file=source, column=col)
    for col in ("score", "behaviour_score", "image_score", "social_score"):
        values = candidates[col].to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"candidates: {col} must be finite, got {values[bad[0]]}", file=source,
                            row=int(bad[0]), column=col)


def take_column(table: pd.DataFrame, column: str, positions: np.ndarray) -> pd.Series:
    """``table[column]`` at ``positions``; text columns come back categorical (cheap to build)."""
    series = table[column]
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        codes, uniques = pd.factorize(series)
        return pd.Series(pd.Categorical.from_codes(codes[positions], categories=uniques))
    return pd.Series(series.to_numpy()[positions])


def relabel(values: pd.Categorical, mapping: dict[str, str]) -> pd.Categorical:
    """Categorical with each label replaced by ``mapping[label]`` ("" when unmapped)."""
    new = [mapping.get(str(c), "") for c in values.categories]
    codes, uniques = pd.factorize(pd.Series(new, dtype=object))
    return pd.Categorical.from_codes(codes[np.asarray(values.codes)], categories=list(uniques))


def apply_rules(
    candidates: pd.DataFrame, context: RuleContext, rules: RulesConfig, source: str | None = None
) -> RuleResult:
    """Filter, boost, re-rank and cap candidates; assign promotion, channel, send time and price
    suggestion; explain every row. ``source`` names the candidates file in errors."""
    check_candidates(candidates, source)
    rows = candidates.reset_index(drop=True)
    frame = EvalFrame(rows, context, source)
    validate_rules(rules, frame)
    scored = score_rows(frame, rules)
    caps = rules.caps
    ranked = rank_rows(frame, scored.keep, scored.final, rules.top_k, caps.max_per_category,
                       caps.category_column)
    plan = ranked.rows
    user = frame.user_pos[plan]
    item = frame.item_pos[plan]
    starts, lengths = runs(user)
    run_users = user[starts]
    by_value = np.lexsort((run_users, -scored.final[plan[starts]]))
    price = context.items["price"].to_numpy(dtype=float, na_value=np.nan)[item]
    known = np.isfinite(price)
    sums = np.add.reduceat(np.where(known, price, 0.0), starts) if plan.size else np.zeros(0)
    n_known = np.add.reduceat(known.astype(float), starts) if plan.size else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_price = sums / n_known
    promo, promo_counts = assign_promotions(frame, rules, run_users[by_value], mean_price[by_value])
    chan, chan_counts = assign_channels(frame, rules, run_users[by_value])
    slot = np.empty(len(by_value), dtype=np.int64)
    slot[by_value] = np.arange(len(by_value))
    per_row = slot[np.repeat(np.arange(len(starts)), lengths)]
    users_plan = pd.concat([promo, chan], axis=1).iloc[per_row].reset_index(drop=True)
    pricing, _ = price_items(frame, rules)
    pricing = pricing.iloc[item].reset_index(drop=True)

    out = pd.DataFrame(
        {
            "user_idx": user.astype(np.int64),
            "user_id": context.users["user_id"].take(user).reset_index(drop=True),
            "item_idx": item.astype(np.int64),
            "item_id": context.items["item_id"].take(item).reset_index(drop=True),
            "rank": ranked.rank.astype(np.int64),
            "retrieval_rank": rows["rank"].to_numpy()[plan],
            "score_before": scored.score_before[plan],
            "score": scored.final[plan],
            "behaviour_score": rows["behaviour_score"].to_numpy(dtype=float)[plan],
            "image_score": rows["image_score"].to_numpy(dtype=float)[plan],
            "social_score": scored.social[plan],
            "social_image_used": scored.social_used[plan],
        }
    )
    if "segment" in context.users.columns:
        out["segment"] = take_column(context.users, "segment", user)
    out = pd.concat([out, users_plan, pricing], axis=1)
    out["price"] = price
    capped_flag = pd.Categorical.from_codes(out["budget_capped"].to_numpy().astype(np.int64),
                                            categories=["", "campaign_budget"])
    reason = out["channel_reason"].array
    cap_reason = relabel(reason, {"frequency_cap": "frequency_cap",
                                  "budget_fallback": "channel_budget",
                                  "budget_exhausted": "channel_budget"})
    explanation, fired_text = build_explanations(
        ExplainInputs(
            fired=scored.fired[plan],
            boost_names=[b.name for b in rules.boosts],
            extra={"promotion": out["promotion"].array, "pricing": out["pricing_rule"].array,
                   "budget": capped_flag, "caps": cap_reason},
            score_before=out["score_before"].to_numpy(), score_after=out["score"].to_numpy(),
            behaviour=out["behaviour_score"].to_numpy(), image=out["image_score"].to_numpy(),
            social=out["social_score"].to_numpy(), social_used=out["social_image_used"].to_numpy(),
            labels={"promotion": out["promotion"].array, "pricing": out["pricing_rule"].array,
                    "channel": out["channel"].array, "channel_reason": reason},
            pushed_by=rows["pushed_by"].to_numpy(dtype=object)[plan]
            if "pushed_by" in rows.columns else None,
        )
    )
    out["rules_fired"] = fired_text
    out["explanation"] = explanation
    counts = {**scored.counts, **ranked.counts, **promo_counts, **chan_counts}
    for r in rules.pricing:
        counts[r.name] = int((out["pricing_rule"] == r.name).sum())
    gone = np.flatnonzero(~scored.keep)
    names = np.array([f.name for f in rules.filters], dtype=object)
    removed = pd.DataFrame({
        "user_idx": frame.user_pos[gone], "item_idx": frame.item_pos[gone],
        "score": scored.score_before[gone],
        "removed_by": pd.Categorical(names[scored.removed_by[gone]], categories=list(names)),
    })
    return RuleResult(out, counts, removed)
