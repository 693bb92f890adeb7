"""The numpy one-user rules path (OnlineRules.decide) decides what the rules engine
(OnlineRules.apply, i.e. apply_rules) decides, over every branch: row, user, item and mixed
conditions, filters with and without lookback, every boost kind, cross-sell at both levels,
category cap, promotions under a binding budget, channels with empty budgets, routes, frequency
caps, send times, known and new users."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from module_loading import load_module

from recsys.rules import RuleContext, parse_rules
from recsys.serving.online_rules import OnlineRules
from recsys.serving.user_rules import CANDIDATE_COLUMNS

ROOT = Path(__file__).resolve().parents[3]
N_USERS, N_ITEMS = 300, 3000


def _bench_rules() -> Any:
    return load_module("bench_rules", ROOT / "scripts/bench_rules.py")


@pytest.fixture(scope="module")
def context() -> RuleContext:
    """The rules bench's synthetic context, plus association rules its users' purchases fire."""
    ctx = _bench_rules().make_context(N_USERS, N_ITEMS)
    hist = ctx.history.drop_duplicates("user_idx").head(60)
    rng = np.random.default_rng(5)
    fired = pd.DataFrame({"level": "item",
                          "antecedents": [[f"i{i}"] for i in hist["item_idx"]],
                          "consequents": [[f"i{c}", "unknown"] for c in
                                          rng.integers(0, N_ITEMS, len(hist))],
                          "lift": rng.uniform(1.0, 3.0, len(hist))})
    return RuleContext(ctx.users, ctx.items, ctx.history,
                       pd.concat([ctx.association, fired], ignore_index=True), ctx.now,
                       ctx.contacts)


def _raw() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((ROOT / "recsys/conf/rules/default.yaml").read_text()))


def _variants() -> dict[str, dict[str, Any]]:
    base = _raw()
    base["boosts"][0]["when"]["value"] = [f"i{i}" for i in range(0, N_ITEMS, 7)]
    base["caps"]["campaign_budget"] = None
    tight = copy.deepcopy(base)
    tight["caps"]["campaign_budget"] = 0.5  # binds for the dearer offers
    tight["channels"]["options"]["app_push"]["budget"] = 0.0005  # room 0: fall back
    tight["channels"]["options"]["email"]["budget"] = 0.0
    tight["channels"]["routes"] = {"sms": ["social_ads", "sms", "email", "app_push"]}
    other = copy.deepcopy(base)
    other["score_transform"] = "none"
    other["filters"][0]["lookback_days"] = 30
    other["filters"][1]["enabled"] = False
    other["caps"]["max_per_category"] = None
    other["boosts"][1]["level"] = "item"
    other["boosts"].append({"name": "cheap_for_age", "add": 0.05,
                            "when": {"any": [{"column": "price", "op": "<", "ref": "age"},
                                             {"column": "score", "op": ">", "value": 1.2}]}})
    other["boosts"].append({"name": "young", "multiply": 1.5,
                            "when": {"column": "age", "op": "between", "value": [18, 30]}})
    other["filters"].append({"name": "low_rank", "when": {"not": {"column": "rank", "op": "<=",
                                                                   "value": 35}}})
    cats = copy.deepcopy(base)
    cats["boosts"][1]["level"] = "category"
    cats["top_k"] = 25
    cats["caps"]["max_per_category"] = 2
    return {"default": base, "tight_budgets": tight, "row_and_mixed": other,
            "category_cross_sell": cats}


def _candidates(ctx: RuleContext, user: int, rng: np.random.Generator) -> pd.DataFrame:
    """40 candidates: some of the user's purchases, cross-sell consequents, random items."""
    owned = ctx.history.loc[ctx.history["user_idx"] == user, "item_idx"].to_numpy()[:6]
    cons = [int(str(c[0])[1:]) for c in ctx.association["consequents"].iloc[-60:]][:8]
    pool = np.unique(np.r_[owned, cons, rng.integers(0, N_ITEMS, 60)])
    items = rng.permutation(pool)[:40]
    n = len(items)
    parts = {p: rng.normal(size=n) * 0.3 for p in ("base", "behaviour", "image", "social")}
    score = sum(parts.values())
    order = np.argsort(-score, kind="stable")
    frame = pd.DataFrame({
        "user_idx": np.full(n, user, dtype=np.int64), "item_idx": items[order].astype(np.int64),
        "item_id": [f"i{i}" for i in items[order]], "score": score[order],
        "rank": np.arange(1, n + 1, dtype=np.int64),
        **{f"{p}_score": v[order] for p, v in parts.items()}})
    return frame[list(CANDIDATE_COLUMNS)]


def _check_same(online: OnlineRules, cands: pd.DataFrame, new_user: dict[str, Any] | None,
                what: str) -> int:
    want = online.apply(cands, new_user)
    got = online.decide({c: cands[c].to_numpy() for c in cands.columns}, new_user)
    assert got.item_idx.tolist() == want["item_idx"].tolist(), what
    assert got.rank.tolist() == want["rank"].tolist(), what
    np.testing.assert_array_equal(got.score, want["score"].to_numpy(), err_msg=what)
    np.testing.assert_array_equal(got.social, want["social_score"].to_numpy(), err_msg=what)
    np.testing.assert_array_equal(got.price, want["price"].to_numpy(), err_msg=what)
    np.testing.assert_array_equal(got.suggested_price, want["suggested_price"].to_numpy(),
                                  err_msg=what)
    assert [";".join(f) for f in got.rules_fired] == want["rules_fired"].astype(str).tolist(), what
    if len(want):
        assert {got.promotion} == set(want["promotion"].astype(str)), what
        assert {got.channel} == set(want["channel"].astype(str)), what
        sent = want["send_time"].to_numpy(dtype="datetime64[ns]")
        assert (np.isnat(got.send_time) and np.isnat(sent).all()) or (sent == got.send_time).all()
        note = {e["social_image"] for e in want["explanation"]}
        assert {got.social_image} == note, what
    return len(want)


@pytest.mark.parametrize("variant", list(_variants()))
def test_one_user_path_decides_as_the_engine_for_known_users(context: RuleContext,
                                                             variant: str) -> None:
    online = OnlineRules(parse_rules(_variants()[variant]), context)
    rng = np.random.default_rng(1)
    rows = sum(_check_same(online, _candidates(context, int(u), rng), None, f"{variant} {u}")
               for u in rng.choice(N_USERS, 40, replace=False))
    assert rows > 100


@pytest.mark.parametrize("variant", ["default", "tight_budgets", "row_and_mixed"])
def test_one_user_path_decides_as_the_engine_for_new_users(context: RuleContext,
                                                           variant: str) -> None:
    online = OnlineRules(parse_rules(_variants()[variant]), context)
    rng = np.random.default_rng(2)
    records = [
        {"age": 25, "segment": "champions", "preferred_channel": "sms",
         "marketing_consent": True, "social_image_consent": True, "history": ["i1", "i7"]},
        {"age": 16, "frequency": 0, "marketing_consent": True, "history": []},
        {"churn_proba": 0.9, "price_sensitive": True, "marketing_consent": True,
         "preferred_channel": "email", "top_hour": 7, "history": ["i3"]},
        {"marketing_consent": False, "history": ["i2"]},
    ]
    for i, record in enumerate(records):
        cands = _candidates(context, 0, rng).assign(user_idx=-1)
        _check_same(online, cands, record, f"{variant} new user {i}")
