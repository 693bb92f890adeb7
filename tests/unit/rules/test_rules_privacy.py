"""Consent: no marketing channel without marketing consent; no social-image signal without
social-image consent (zeroed and explained)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.rules import RuleContext, apply_rules, parse_rules
from recsys.rules.explain import SOCIAL_IGNORED, SOCIAL_USED

ITEMS = [0, 1, 2, 3, 4, 5]


def _plain_rules(raw: dict[str, Any]) -> dict[str, Any]:
    """No boosts, no filters, raw scores: the final score shows the signals directly."""
    raw.update(filters=[], boosts=[], score_transform="none")
    raw["caps"]["max_per_category"] = None
    return raw


def test_social_signal_zeroed_without_consent(raw_rules: dict[str, Any], context: RuleContext,
                                              candidates: Callable[..., pd.DataFrame]) -> None:
    users = context.users.set_index("user_idx")
    assert not users.loc[1, "social_image_consent"] and users.loc[2, "social_image_consent"]
    cands = candidates([1, 2], ITEMS)
    plan = apply_rules(cands, context, parse_rules(_plain_rules(raw_rules))).recommendations
    src = cands.set_index(["user_idx", "item_idx"])
    for _, row in plan.iterrows():
        c = src.loc[(row["user_idx"], row["item_idx"])]
        expl = row["explanation"]
        assert expl["score_before"] == pytest.approx(c["score"])
        if row["user_idx"] == 1:
            assert row["social_score"] == 0.0 and not row["social_image_used"]
            assert expl["contributions"]["social_image"] == 0.0
            assert expl["social_image"] == SOCIAL_IGNORED
            assert row["score"] == pytest.approx(c["behaviour_score"] + c["image_score"])
        else:
            assert row["social_score"] == pytest.approx(c["social_score"])
            assert expl["social_image"] == SOCIAL_USED
            assert row["score"] == pytest.approx(c["score"])


def test_social_signal_cannot_reorder_without_consent(raw_rules: dict[str, Any],
                                                      context: RuleContext) -> None:
    """A huge social score must not lift an item for a user without social-image consent."""
    cands = pd.DataFrame({"user_idx": [1, 1], "item_idx": [0, 1], "rank": [1, 2],
                          "behaviour_score": [0.2, 0.5], "image_score": [0.0, 0.0],
                          "social_score": [9.0, 0.0]})
    cands["score"] = cands["behaviour_score"] + cands["image_score"] + cands["social_score"]
    plan = apply_rules(cands, context, parse_rules(_plain_rules(raw_rules))).recommendations
    assert plan["item_idx"].tolist() == [1, 0]
    with_consent = cands.assign(user_idx=2)
    plan = apply_rules(with_consent, context, parse_rules(_plain_rules(raw_rules))).recommendations
    assert plan["item_idx"].tolist() == [0, 1]


def test_no_marketing_channel_without_consent(raw_rules: dict[str, Any], context: RuleContext,
                                              candidates: Callable[..., pd.DataFrame]) -> None:
    no_consent = context.users.loc[~context.users["marketing_consent"], "user_idx"].tolist()
    assert 0 in no_consent
    # even with the consent filter switched off, nobody without consent gets a channel
    raw_rules["filters"] = [f for f in raw_rules["filters"] if f["name"] != "no_marketing_consent"]
    plan = apply_rules(candidates(list(range(20)), ITEMS), context,
                       parse_rules(raw_rules)).recommendations
    theirs = plan[plan["user_idx"].isin(no_consent)]
    assert len(theirs) > 0
    assert (theirs["channel"] == "none").all()
    assert (theirs["channel_reason"] == "no_marketing_consent").all()
    assert theirs["send_time"].isna().all()
    assert (plan.loc[~plan["user_idx"].isin(no_consent), "channel"] != "none").all()


def test_social_ads_only_with_social_consent(raw_rules: dict[str, Any], context: RuleContext,
                                             candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["channels"]["order"] = ["social_ads", "app_push", "email", "sms"]
    plan = apply_rules(candidates(list(range(45)), ITEMS), context,
                       parse_rules(raw_rules)).recommendations
    consent = context.users["social_image_consent"].to_numpy()
    social = plan[plan["channel"] == "social_ads"]
    assert len(social) > 0 and consent[social["user_idx"].to_numpy()].all()
    assert np.isin(plan.loc[~consent[plan["user_idx"].to_numpy()], "channel"],
                   ["app_push", "email", "sms", "none"]).all()
