"""Association rules over baskets (mlxtend), item and category level."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.mining.association import baskets, mine_association_rules, mine_rules
from recsys.mining.config import AssociationConfig, Thresholds

LOOSE = Thresholds(min_support=0.1, min_confidence=0.5, min_lift=1.0)


def _transactions() -> list[list[str]]:
    # bread -> butter in 4 of 5 bread baskets; milk alone often
    return ([["bread", "butter"]] * 4 + [["bread"]] + [["milk"]] * 4 + [["butter", "jam"]])


def test_planted_rule_with_support_confidence_lift() -> None:
    rules = mine_rules(_transactions(), LOOSE, "fpgrowth", 2)
    row = rules[(rules["antecedents"].map(tuple) == ("bread",))
                & (rules["consequents"].map(tuple) == ("butter",))]
    assert len(row) == 1
    r = row.iloc[0]
    assert r["support"] == pytest.approx(0.4)
    assert r["confidence"] == pytest.approx(0.8)
    assert r["lift"] == pytest.approx(0.8 / 0.5)
    assert not rules["antecedents"].map(lambda a: "milk" in a).any()


def test_thresholds_filter_and_algorithms_agree() -> None:
    strict = mine_rules(_transactions(), Thresholds(0.1, 0.9, 1.0), "fpgrowth", 2)
    assert strict.empty or (strict["confidence"] >= 0.9).all()
    high_lift = mine_rules(_transactions(), Thresholds(0.1, 0.1, 1.7), "fpgrowth", 2)
    assert (high_lift["lift"] >= 1.7).all()
    a = mine_rules(_transactions(), LOOSE, "fpgrowth", 2)
    b = mine_rules(_transactions(), LOOSE, "apriori", 2)
    key = ["antecedents", "consequents"]
    norm = [x.assign(**{k: x[k].map(tuple) for k in key}).sort_values(key).reset_index(drop=True)
            for x in (a, b)]
    pd.testing.assert_frame_equal(norm[0], norm[1])


def test_baskets_by_order_and_both_levels() -> None:
    purchases = pd.DataFrame({
        "user_idx": [0, 0, 0, 1, 1, 2, 2],
        "item_idx": [0, 1, 2, 0, 1, 0, 1],
        "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-02 09:00",
                                     "2024-01-03 09:00", "2024-01-03 09:00", "2024-01-05 09:00",
                                     "2024-01-05 09:00"]),
    })
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "category": ["x", "y", "y"]})
    by_order = baskets(purchases, purchases["item_idx"].map(items["item_id"]), "order")
    assert sorted(by_order) == [["a", "b"], ["a", "b"], ["a", "b"], ["c"]]
    assert len(baskets(purchases, purchases["item_idx"], "user")) == 3
    cfg = AssociationConfig("fpgrowth", 2, LOOSE, LOOSE)
    rules = mine_association_rules(purchases, items, "category", "order", cfg)
    assert set(rules["level"]) == {"item", "category"}
    item_rule = rules[(rules["level"] == "item") & (rules["antecedents"].map(tuple) == ("a",))]
    assert item_rule["consequents"].map(tuple).tolist() == [("b",)]
    assert (rules["n_baskets"] == 4).all()


def test_support_threshold_follows_the_number_of_baskets() -> None:
    t = Thresholds(min_support=0.0, min_confidence=0.1, min_lift=1.0, min_count=5)
    assert t.support(1000) == pytest.approx(0.005) and t.support(10) == pytest.approx(0.5)
    assert Thresholds(0.02, 0.1, 1.0, min_count=5).support(10_000) == 0.02
    txns = [["a", "b"]] * 4 + [["c"]] * 96  # the pair is in 4 baskets out of 100
    assert mine_rules(txns, Thresholds(0.0, 0.1, 1.0, min_count=5), "fpgrowth", 2).empty
    found = mine_rules(txns, Thresholds(0.0, 0.1, 1.0, min_count=4), "fpgrowth", 2)
    assert len(found) == 2 and (found["support"] == 0.04).all()
