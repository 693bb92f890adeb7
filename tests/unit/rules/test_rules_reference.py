"""The vectorised engine agrees with the per-row Python reference (recsys.rules.reference), on
the benchmark's synthetic context and on the tiny dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from recsys.rules import RuleContext, apply_rules, parse_rules
from recsys.rules.reference import compare, reference_apply


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_on_synthetic_context(bench_module: Any, seed: int) -> None:
    n_users, n_items = 300, 400
    ctx = bench_module.make_context(n_users, n_items, seed=seed)
    cands = bench_module.make_candidates(n_users * bench_module.PER_USER, n_users, n_items, seed)
    cfg = bench_module.bench_rules(n_items, budget_scale=n_users / 50_000)
    ours = apply_rules(cands, ctx, cfg)
    assert compare(ours.recommendations, reference_apply(cands, ctx, cfg)) == []
    # the run exercised the capping paths
    assert ours.rule_counts["campaign_budget"] > 0 and ours.rule_counts["channel_budget"] > 0
    assert ours.rule_counts["category_diversity"] > 0 and ours.rule_counts["cross_sell"] > 0


def test_agrees_on_tiny_dataset(raw_rules: dict[str, Any], context: RuleContext,
                                candidates: Callable[..., pd.DataFrame]) -> None:
    cfg = parse_rules(raw_rules)
    cands = candidates(list(range(50)), list(range(0, 40, 2)), seed=3)
    ours = apply_rules(cands, context, cfg).recommendations
    assert compare(ours, reference_apply(cands, context, cfg)) == []
    # raw scores and multiplicative boosts
    raw_rules["score_transform"] = "none"
    raw_rules["boosts"][2] = {"name": "new_arrivals", "multiply": 1.5,
                              "when": {"column": "days_since_first_seen", "op": "<=",
                                       "value": float(context.items["days_since_first_seen"].median())}}
    cfg = parse_rules(raw_rules)
    ours = apply_rules(cands, context, cfg).recommendations
    assert ours["rules_fired"].str.contains("new_arrivals").any()
    assert compare(ours, reference_apply(cands, context, cfg)) == []
