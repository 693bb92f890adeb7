"""apply_rules: filters, boosts, ranking caps, explanations and counts on the tiny dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.rules import RuleContext, apply_rules, parse_rules

ALL_ITEMS = list(range(40))


def _plan(raw: dict[str, Any], ctx: RuleContext, cands: pd.DataFrame) -> pd.DataFrame:
    return apply_rules(cands, ctx, parse_rules(raw)).recommendations


def test_filters_remove_bought_out_of_stock_restricted_and_unconsented(
        raw_rules: dict[str, Any], context: RuleContext,
        candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["top_k"] = 40
    raw_rules["caps"]["max_per_category"] = None
    cands = candidates(list(range(12)), ALL_ITEMS)
    res = apply_rules(cands, context, parse_rules(raw_rules))
    plan = res.recommendations
    bought = set(zip(context.history["user_idx"], context.history["item_idx"], strict=True))
    assert not any(p in bought for p in zip(plan["user_idx"], plan["item_idx"], strict=True))
    assert not plan["item_idx"].isin([7, 21]).any()  # out of stock
    minors = plan[plan["user_idx"].isin([3, 4, 5])]  # ages NaN, 16, 17
    assert not minors["item_idx"].isin([38, 39]).any()
    adults = context.users.loc[(context.users["age"] >= 18) & context.users["marketing_consent"],
                               "user_idx"]
    assert plan[plan["user_idx"].isin(adults)]["item_idx"].isin([38, 39]).any()
    assert 0 not in set(plan["user_idx"])  # no marketing consent
    # counts: rows matched by each filter; removed rows name the first filter that matched
    stock0 = cands["item_idx"].isin([7, 21]).sum()
    assert res.rule_counts["out_of_stock"] == stock0
    assert (res.removed["removed_by"] == "already_bought").sum() == sum(
        p in bought for p in zip(cands["user_idx"], cands["item_idx"], strict=True))
    assert len(res.removed) + len(plan) == len(cands)
    # disabling the already-bought filter lets bought items back in
    raw_rules["filters"][0]["enabled"] = False
    again = _plan(raw_rules, context, cands)
    assert any(p in bought for p in zip(again["user_idx"], again["item_idx"], strict=True))


def test_promoted_boost_moves_item_to_the_top(raw_rules: dict[str, Any], context: RuleContext,
                                              candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["boosts"][0]["when"]["value"] = ["i013"]
    raw_rules["boosts"][0]["add"] = 5.0
    raw_rules["filters"] = raw_rules["filters"][1:]  # keep bought items
    plan = _plan(raw_rules, context, candidates([1, 2, 6], ALL_ITEMS))
    top = plan[plan["rank"] == 1]
    assert (top["item_id"] == "i013").all() and len(top) == 3
    assert top["rules_fired"].str.contains("promoted_items").all()
    others = plan[plan["item_id"] != "i013"]
    assert not others["rules_fired"].str.contains("promoted_items").any()


def test_cross_sell_from_association_rules(raw_rules: dict[str, Any], context: RuleContext,
                                           candidates: Callable[..., pd.DataFrame]) -> None:
    hist, users, items = context.history, context.users, context.items
    owned = {u: set(items.loc[list(g), "item_id"]) for u, g in hist.groupby("user_idx")["item_idx"]}
    consenting = [u for u in users.loc[users["marketing_consent"], "user_idx"] if u in owned]
    owner = consenting[0]
    antecedent = sorted(owned[owner])[0]
    other = next(u for u in consenting if antecedent not in owned[u])
    target = next(i for i in range(38) if i not in (7, 21)
                  and f"i{i:03d}" not in owned[owner] | owned[other])
    rules = pd.DataFrame({"level": ["item"], "antecedents": [[antecedent]],
                          "consequents": [[f"i{target:03d}"]], "lift": [3.0]})
    ctx = dataclasses.replace(context, association=rules)
    raw_rules["boosts"] = [b for b in raw_rules["boosts"] if b["name"] == "cross_sell"]
    raw_rules["boosts"][0]["level"] = "item"
    cands = candidates([owner, other], [target])
    res = apply_rules(cands, ctx, parse_rules(raw_rules))
    fired = res.recommendations.set_index("user_idx")["rules_fired"]
    assert "cross_sell" in fired[owner] and "cross_sell" not in fired[other]
    assert res.rule_counts["cross_sell"] == 1
    # the boost adds 0.2 on the 0..1 scale (one candidate per user: base score 1.0)
    assert res.recommendations.set_index("user_idx")["score"][owner] == pytest.approx(1.2)
    raw_rules["boosts"][0]["min_lift"] = 5.0  # above the rule's lift: nothing fires
    plan = _plan(raw_rules, ctx, cands)
    assert not plan["rules_fired"].str.contains("cross_sell").any()
    # category level: owning a category recommends items of the consequent category
    cat_rules = pd.DataFrame({"level": ["category"], "antecedents": [["tops", "bags"]],
                              "consequents": [["shoes"]], "lift": [2.0]})
    ctx = dataclasses.replace(context, association=cat_rules)
    raw_rules["boosts"][0].update(level="category", min_lift=1.5)
    shoes = [i for i in range(38) if items.loc[i, "category"] == "shoes" and i not in (7, 21)]
    tops = [i for i in range(38) if items.loc[i, "category"] == "tops" and i not in (7, 21)]
    owns_both = [u for u in consenting if {"tops", "bags"} <= set(
        items.loc[list(hist.loc[hist["user_idx"] == u, "item_idx"]), "category"])]
    raw_rules["filters"] = raw_rules["filters"][1:]
    plan = _plan(raw_rules, ctx, candidates(owns_both[:2], shoes[:2] + tops[:2]))
    is_shoe = plan["item_idx"].isin(shoes)
    assert plan.loc[is_shoe, "rules_fired"].str.contains("cross_sell").all()
    assert not plan.loc[~is_shoe, "rules_fired"].str.contains("cross_sell").any()


def test_ranking_caps_and_explanations(raw_rules: dict[str, Any], context: RuleContext,
                                       candidates: Callable[..., pd.DataFrame]) -> None:
    raw_rules["top_k"] = 6
    raw_rules["caps"]["max_per_category"] = 2
    cands = candidates(list(range(1, 20)), ALL_ITEMS)
    res = apply_rules(cands, context, parse_rules(raw_rules))
    plan = res.recommendations
    per_user = plan.groupby("user_idx")
    assert per_user.size().max() <= 6
    cats = plan["item_idx"].map(context.items["category"])
    assert plan.assign(c=cats).groupby(["user_idx", "c"]).size().max() <= 2
    assert res.rule_counts["category_diversity"] > 0
    for _, g in per_user:
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
        assert np.all(np.diff(g["score"].to_numpy()) <= 0)
    # explanation: scores before / after and contributions of the three signals
    expl = plan["explanation"].iloc[0]
    row = plan.iloc[0]
    src = cands[(cands["user_idx"] == row["user_idx"]) & (cands["item_idx"] == row["item_idx"])].iloc[0]
    assert expl["score_before"] == pytest.approx(src["score"]) == row["score_before"]
    assert expl["score_after"] == pytest.approx(row["score"])
    assert expl["contributions"]["behaviour"] == pytest.approx(src["behaviour_score"])
    assert expl["contributions"]["product_image"] == pytest.approx(src["image_score"])
    assert list(expl["rules_fired"]) == row["rules_fired"].split(";")
    assert expl["promotion"] == row["promotion"] and expl["channel"] == row["channel"]


def test_everything_filtered_gives_an_empty_plan(raw_rules: dict[str, Any], context: RuleContext,
                                                 candidates: Callable[..., pd.DataFrame]) -> None:
    res = apply_rules(candidates([0], [0, 1, 2]), context, parse_rules(raw_rules))  # no consent
    assert res.recommendations.empty and len(res.removed) == 3
    assert "explanation" in res.recommendations.columns
    assert res.rule_counts["no_marketing_consent"] == 3 and res.rule_counts["channel:none"] == 0


def test_candidate_errors_name_row_and_column(context: RuleContext, raw_rules: dict[str, Any],
                                              candidates: Callable[..., pd.DataFrame]) -> None:
    from recsys.errors import DataError

    cfg = parse_rules(raw_rules)
    cands = candidates([1], [0, 1, 2])
    with pytest.raises(DataError, match="image_score"):
        apply_rules(cands.drop(columns=["image_score"]), context, cfg, source="c.parquet")
    bad = cands.copy()
    bad.loc[2, "user_idx"] = 999
    with pytest.raises(DataError, match="user_idx 999") as err:
        apply_rules(bad, context, cfg, source="c.parquet")
    assert err.value.row == 2 and err.value.file == "c.parquet"
    nan = cands.copy()
    nan.loc[1, "score"] = np.nan
    with pytest.raises(DataError, match="score must be finite"):
        apply_rules(nan, context, cfg)
