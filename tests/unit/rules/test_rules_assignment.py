"""Promotions, campaign / channel budgets, send times, frequency cap, pricing guardrails."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.rules import RuleContext, apply_rules, parse_rules

ITEMS = [0, 1, 2, 3, 5, 6]


def _run(raw: dict[str, Any], ctx: RuleContext, cands: pd.DataFrame) -> Any:
    return apply_rules(cands, ctx, parse_rules(raw))


def test_promotion_by_priority(raw_rules: dict[str, Any], context: RuleContext,
                               candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["caps"]["campaign_budget"] = None
    plan = _run(raw_rules, context, candidates(list(range(48)), ITEMS)).recommendations
    per_user = plan.groupby("user_idx").first()
    users = context.users.set_index("user_idx").loc[per_user.index]
    new = users["frequency"] == 0
    assert (per_user.loc[new, "promotion"] == "first_purchase_coupon").all() and new.any()
    churny = ~new & (users["churn_proba"] >= 0.6)
    assert (per_user.loc[churny, "promotion"] == "retention_coupon").all()
    rest = ~new & ~churny
    loyal = rest & (users["segment"].isin(["champions", "at_risk"]) | (users["f_score"] >= 4))
    assert (per_user.loc[loyal, "promotion"] == "loyalty_points").all()
    sensitive = rest & ~loyal & users["price_sensitive"]
    assert (per_user.loc[sensitive, "promotion"] == "price_sensitive_discount").all()
    coupon = per_user[per_user["promotion"] == "retention_coupon"]
    assert (coupon["promotion_depth"] == 0.2).all() and (coupon["promotion_offer"] == "coupon").all()


def test_campaign_budget_keeps_offers_for_the_most_valuable_users(
        raw_rules: dict[str, Any], context: RuleContext,
        candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["caps"]["campaign_budget"] = None
    cands = candidates(list(range(48)), ITEMS)
    free = _run(raw_rules, context, cands).recommendations.groupby("user_idx").first()
    total = free["expected_promotion_cost"].sum()
    raw_rules["caps"]["campaign_budget"] = total / 2
    res = _run(raw_rules, context, cands)
    per_user = res.recommendations.groupby("user_idx").first()
    assert per_user["expected_promotion_cost"].sum() <= total / 2 + 1e-9
    capped = per_user["budget_capped"]
    assert capped.any() and res.rule_counts["campaign_budget"] == capped.sum()
    assert (per_user.loc[capped, "promotion"] == "none").all()
    assert per_user.loc[capped, "rules_fired"].str.contains("campaign_budget").all()
    # offers went to higher-value users: every kept offer's user outranks every capped one
    value = per_user["score"]
    kept = ~capped & (per_user["promotion"] != "none")
    assert value[kept].min() >= value[capped].max()


def test_channel_budget_falls_back_in_value_order(raw_rules: dict[str, Any], context: RuleContext,
                                                  candidates: Callable[..., pd.DataFrame]) -> None:
    opts = raw_rules["channels"]["options"]
    opts["app_push"]["budget"] = opts["app_push"]["cost"] * 2  # room for two messages
    res = _run(raw_rules, context, candidates(list(range(48)), ITEMS))
    per_user = res.recommendations.groupby("user_idx").first()
    assert (per_user["channel"] == "app_push").sum() == 2
    wanted = context.users.set_index("user_idx").loc[per_user.index, "preferred_channel"] == "app_push"
    got = per_user["channel"] == "app_push"
    assert (per_user.loc[wanted & ~got, "channel_reason"] == "budget_fallback").all()
    assert per_user.loc[wanted & got, "score"].min() >= per_user.loc[wanted & ~got, "score"].max()
    fell_back = per_user["channel_reason"].isin(["budget_fallback", "budget_exhausted"])
    assert res.rule_counts["channel_budget"] == fell_back.sum() >= (wanted & ~got).sum()
    # nobody who fell back is worth more than the two users who got app_push
    assert per_user.loc[fell_back, "score"].max() <= per_user.loc[got, "score"].min()


def test_channel_routes_replace_the_preferred_first_order(
        raw_rules: dict[str, Any], context: RuleContext,
        candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["channels"]["routes"] = {"app_push": ["email", "app_push", "sms", "social_ads"]}
    res = _run(raw_rules, context, candidates(list(range(48)), ITEMS))
    per_user = res.recommendations.groupby("user_idx").first()
    pref = context.users.set_index("user_idx").loc[per_user.index, "preferred_channel"]
    routed = (pref == "app_push") & (per_user["channel"] != "none")
    assert routed.any() and (per_user.loc[routed, "channel"] == "email").all()
    assert (per_user.loc[routed, "channel_reason"] == "order").all()
    others = (pref != "app_push") & (per_user["channel_reason"] == "preferred")
    assert others.any() and (per_user.loc[others, "channel"] == pref[others]).all()


def test_send_time_in_window_after_now(raw_rules: dict[str, Any], context: RuleContext,
                                       candidates: Callable[..., pd.DataFrame]) -> None:
    plan = _run(raw_rules, context, candidates(list(range(45)), ITEMS)).recommendations
    per_user = plan.groupby("user_idx").first()
    sent = per_user[per_user["channel"] != "none"]
    assert (sent["send_time"] > context.now).all()
    assert (sent["send_time"] <= context.now + pd.Timedelta(days=1)).all()
    top_hour = context.users.set_index("user_idx").loc[sent.index, "top_hour"]
    for user, row in sent.iterrows():
        start, end = raw_rules["channels"]["options"][row["channel"]]["send_window"]
        hour = row["send_time"].hour
        assert start <= hour < end
        if start <= top_hour[user] < end:
            assert hour == top_hour[user]


def test_frequency_cap_from_contact_history(raw_rules: dict[str, Any], context: RuleContext,
                                            candidates: Callable[..., pd.DataFrame]) -> None:
    contacts = pd.DataFrame({"user_idx": [2, 2, 2, 6, 6],
                             "sent_at": [context.now - pd.Timedelta(days=d) for d in (1, 2, 3, 1, 30)]})
    ctx = dataclasses.replace(context, contacts=contacts)
    res = _run(raw_rules, ctx, candidates([2, 6], ITEMS))
    per_user = res.recommendations.groupby("user_idx").first()
    assert per_user.loc[2, "channel"] == "none" and per_user.loc[2, "channel_reason"] == "frequency_cap"
    assert per_user.loc[6, "channel"] != "none"  # one contact inside the 7-day window
    assert res.rule_counts["frequency_cap"] == 1


def test_pricing_rules_and_guardrails(raw_rules: dict[str, Any], context: RuleContext,
                                      candidates: Callable[..., pd.DataFrame]) -> None:
    items = context.items.copy()
    items["weeks_of_cover"] = [40.0 if i % 2 else 1.0 for i in range(len(items))]
    items["weekly_sales"] = 5.0
    items.loc[3, "cost"] = items.loc[3, "price"] * 0.9  # markdown would break the min margin
    ctx = dataclasses.replace(context, items=items)
    raw_rules["pricing"]["guardrails"]["min_margin"] = 0.05
    plan = _run(raw_rules, ctx, candidates([1, 2, 6], ITEMS)).recommendations
    rows = plan.drop_duplicates("item_idx").set_index("item_idx")
    price = items["price"]
    odd, even = [i for i in rows.index if i % 2], [i for i in rows.index if not i % 2]
    assert (rows.loc[odd, "pricing_rule"] == "overstock_markdown").all()
    assert (rows.loc[even, "pricing_rule"] == "scarcity_premium").all()
    assert rows.loc[1, "suggested_price"] == pytest.approx(price[1] * 0.85)
    assert rows.loc[2, "suggested_price"] == pytest.approx(price[2] * 1.05)
    assert rows.loc[3, "suggested_price"] == pytest.approx(items.loc[3, "cost"] * 1.05)
    assert rows.loc[3, "price_guardrail"] == "min_margin"
    assert np.all(rows["price_factor"].between(0.7, 1.15))
