"""Business KPIs and before / after retrieval metrics on hand-made frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.rules.kpis import business_kpis
from recsys.rules.metrics import before_after, retrieval_metrics


def _plan() -> pd.DataFrame:
    rows = [  # user, item, rank, promotion, depth, fixed, expected cost, channel, rules_fired
        (0, 10, 1, "coupon10", 0.1, 0.0, 1.0, "email", "boost_a;coupon10"),
        (0, 11, 2, "coupon10", 0.1, 0.0, 1.0, "email", "coupon10"),
        (1, 10, 1, "service", 0.0, 2.0, 0.5, "sms", "boost_a;service"),
        (1, 12, 2, "service", 0.0, 2.0, 0.5, "sms", "service"),
        (2, 13, 1, "none", 0.0, 0.0, 0.0, "email", ""),
    ]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "rank", "promotion",
                                       "promotion_depth", "promotion_fixed_cost",
                                       "expected_promotion_cost", "channel", "rules_fired"])


def _holdout() -> pd.DataFrame:
    rows = [  # user, item, day, price, quantity, event
        (0, 10, "2024-05-02", 20.0, 1, "purchase"),
        (0, 11, "2024-05-02", 30.0, 2, "purchase"),   # same order as above: revenue 60
        (0, 99, "2024-05-04", 5.0, 1, "purchase"),    # not recommended
        (1, 12, "2024-05-03", np.nan, 1, "purchase"),  # price from the item table
        (1, 10, "2024-05-03", 20.0, 1, "view"),        # not a purchase
        (3, 10, "2024-05-03", 20.0, 1, "purchase"),   # user without a plan
    ]
    df = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp", "price", "quantity", "event"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["positive"] = df["event"] == "purchase"
    return df


ITEMS = pd.DataFrame({"item_idx": np.arange(100), "price": np.full(100, 40.0)})
SEGMENTS = pd.DataFrame({"user_idx": [0, 1, 2, 3], "segment": ["gold", "gold", "new", "gold"],
                         "frequency": [3, 0, 2, 1]})


def test_business_kpis_by_hand() -> None:
    k = business_kpis(_plan(), _holdout(), ITEMS, SEGMENTS, ["purchase"])
    assert k["users"] == 3 and k["recommendations"] == 5
    assert k["hit_rate"] == pytest.approx(3 / 5)          # (0,10) (0,11) (1,12)
    assert k["user_conversion_rate"] == pytest.approx(2 / 3)
    assert k["hit_revenue"] == pytest.approx(20 + 60 + 40)
    assert k["hit_orders"] == 2 and k["aov_hits"] == pytest.approx(60.0)
    # returning users (frequency > 0) among recommended: 0 and 2; only 0 bought again
    assert k["repeat_purchase_rate"] == pytest.approx(0.5)
    # user 0: 10% of 80; user 1: fixed 2.0; user 2 had no offer
    assert k["promotion_cost"] == pytest.approx(8.0 + 2.0)
    assert k["expected_promotion_cost"] == pytest.approx(1.5)
    assert k["channel_allocation"]["email"]["users"] == 2
    assert k["channel_allocation"]["sms"]["share"] == pytest.approx(1 / 3)
    assert k["rule_hit_rate"]["boost_a"] == {"rows": 2, "hit_rate": 0.5}
    assert k["rule_hit_rate"]["coupon10"]["hit_rate"] == 1.0
    gold, new = k["per_segment"]["gold"], k["per_segment"]["new"]
    assert gold["users"] == 2 and gold["hit_revenue"] == pytest.approx(120.0)
    assert new["hit_rate"] == 0.0 and new["hit_revenue"] == 0.0


def test_retrieval_metrics_by_hand() -> None:
    recs = pd.DataFrame({"user_idx": [0, 0, 0, 1, 1], "item_idx": [5, 6, 7, 8, 9],
                         "rank": [1, 2, 3, 1, 2]})
    holdout = pd.DataFrame({"user_idx": [0, 0, 1, 2], "item_idx": [6, 50, 9, 1],
                            "positive": [True, True, True, True]})
    m = retrieval_metrics(recs, holdout, [1, 2], ["purchase"], users=np.array([0, 1]))
    assert m["users"] == 2
    assert m["recall@1"] == 0.0
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    ideal0 = 1 + 1 / math.log2(3)  # two relevant items
    assert m["ndcg@2"] == pytest.approx(((1 / math.log2(3)) / ideal0 + (1 / math.log2(3)) / 1) / 2)


def test_before_after_over_the_same_users() -> None:
    cands = pd.DataFrame({"user_idx": [0, 0, 1, 1], "item_idx": [5, 6, 8, 9], "rank": [1, 2, 1, 2]})
    plan = pd.DataFrame({"user_idx": [0, 0], "item_idx": [6, 5], "rank": [1, 2]})  # user 1 dropped
    holdout = pd.DataFrame({"user_idx": [0, 1], "item_idx": [6, 9], "positive": [True, True]})
    table = before_after(cands, plan, holdout, [1], ["purchase"]).set_index("stage")
    assert table.loc["before_rules", "recall@1"] == 0.0
    assert table.loc["after_rules", "recall@1"] == pytest.approx(0.5)
    assert table.loc["after_rules", "users"] == table.loc["before_rules", "users"] == 2


def test_configured_purchase_events_are_honoured() -> None:
    holdout = _holdout()
    holdout["event"] = holdout["event"].replace({"purchase": "order"})  # positive flag unchanged
    holdout["positive"] = False  # the event, not the flag, decides
    assert business_kpis(_plan(), holdout, ITEMS, SEGMENTS, ["purchase"])["hit_rate"] == 0.0
    k = business_kpis(_plan(), holdout, ITEMS, SEGMENTS, ["order"])
    assert k["hit_rate"] == pytest.approx(3 / 5) and k["hit_revenue"] == pytest.approx(120.0)
    recs = _plan()[["user_idx", "item_idx", "rank"]]
    assert retrieval_metrics(recs, holdout, [2], ["order"])["recall@2"] == pytest.approx(
        (2 / 3 + 1 / 1 + 0.0) / 3)  # user 0: 2 of 3 bought items; user 1: 12; user 3: none
    assert retrieval_metrics(recs, holdout, [2], ["purchase"])["users"] == 0.0


def _reference_metrics(recs: pd.DataFrame, truth: pd.DataFrame, ks: list[int]) -> dict[str, float]:
    """The former pandas implementation of retrieval_metrics (truth: distinct positives)."""
    n_rel = truth.groupby("user_idx").size()
    out: dict[str, float] = {"users": float(len(n_rel))}
    hits = recs.merge(truth, on=["user_idx", "item_idx"])
    hits = hits[hits["user_idx"].isin(n_rel.index)]
    for k in ks:
        top = hits[hits["rank"] <= k]
        found = top.groupby("user_idx").size().reindex(n_rel.index, fill_value=0)
        dcg = 1.0 / np.log2(top["rank"].to_numpy(dtype=float) + 1.0)
        dcg_user = pd.Series(dcg, index=top["user_idx"].to_numpy()).groupby(level=0).sum()
        ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=float)))[
            np.minimum(n_rel.to_numpy(), k) - 1]
        out[f"recall@{k}"] = float((found.to_numpy() / n_rel.to_numpy()).mean())
        out[f"ndcg@{k}"] = float((dcg_user.reindex(n_rel.index, fill_value=0.0).to_numpy()
                                  / ideal).mean())
    return out


def test_retrieval_metrics_match_the_former_implementation() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items, per_user = 60, 40, 12
    recs = pd.DataFrame({"user_idx": np.repeat(np.arange(n_users), per_user),
                         "item_idx": np.concatenate([rng.permutation(n_items)[:per_user]
                                                     for _ in range(n_users)]),
                         "rank": np.tile(np.arange(1, per_user + 1), n_users)})
    recs = recs.sample(frac=0.8, random_state=0)  # some users lose rows, ranks get gaps
    holdout = pd.DataFrame({"user_idx": rng.integers(0, n_users + 5, 400),
                            "item_idx": rng.integers(0, n_items, 400)})
    holdout["event"] = np.where(rng.random(400) < 0.7, "purchase", "view")
    ks = [1, 5, 10, 20]
    got = retrieval_metrics(recs, holdout, ks, ["purchase"])
    truth = holdout[holdout["event"] == "purchase"][["user_idx", "item_idx"]].drop_duplicates()
    want = _reference_metrics(recs, truth, ks)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
