"""Champion / challenger moves: edits, budgets per arm, the arm comparison, Thompson choice,
adoption on pooled evidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.errors import ConfigError
from recsys.marketing.challengers import (
    CHAMPION,
    ChallengeConfig,
    Move,
    apply_move,
    challenge_config,
    check_moves,
    choose_moves,
    compare_arms,
    draw_arms,
    pooled,
    scale_budgets,
)
from recsys.marketing.loop import adopt
from recsys.rules.config import parse_rules

RAW = {
    "top_k": 10,
    "filters": [{"name": "already_bought", "kind": "already_bought", "lookback_days": None}],
    "promotions": [{"name": "c", "priority": 1, "when": {"column": "frequency", "op": "==", "value": 0},
                    "offer": "coupon", "depth": 0.2, "fixed_cost": 0.0}],
    "channels": {"order": ["email", "sms"],
                 "options": {"email": {"cost": 0.01, "budget": 10.0, "send_window": [7, 22],
                                       "default_hour": 10},
                             "sms": {"cost": 0.05, "budget": 4.0, "send_window": [10, 20],
                                     "default_hour": 12}}},
    "caps": {"max_per_category": 3, "campaign_budget": 100.0},
}


def _move(name: str, *edits: tuple[str, object]) -> Move:
    return Move(name, tuple(edits))


def test_apply_move_edits_existing_keys_by_rule_name_only() -> None:
    out = apply_move(RAW, _move("m", ("filters.already_bought.lookback_days", 28),
                                ("promotions.c.depth", 0.3)))
    assert out is not None and out["filters"][0]["lookback_days"] == 28
    assert out["promotions"][0]["depth"] == 0.3 and RAW["promotions"][0]["depth"] == 0.2
    assert apply_move(RAW, _move("m", ("promotions.c.depth", 0.2))) is None   # changes nothing
    assert apply_move(RAW, _move("m", ("promotions.gone.depth", 0.3))) is None  # no such rule
    assert apply_move(RAW, _move("m", ("caps.new_key", 1))) is None             # no such key
    assert apply_move(RAW, _move("m", ("promotions", [])))["promotions"] == []  # type: ignore[index]


def test_arm_budgets_add_up_to_the_champions() -> None:
    parts = [0.5, 0.25, 0.25]
    scaled = [scale_budgets(RAW, s) for s in parts]
    for ch in ("email", "sms"):
        total = sum(r["channels"]["options"][ch]["budget"] for r in scaled)
        assert total == pytest.approx(RAW["channels"]["options"][ch]["budget"])
    assert sum(r["caps"]["campaign_budget"] for r in scaled) == pytest.approx(100.0)
    arm = draw_arms(np.arange(20_000), [CHAMPION, "a", "b"], 0.25, np.random.default_rng(0))
    share = arm.value_counts(normalize=True)
    assert share[CHAMPION] == pytest.approx(0.5, abs=0.02) and share["a"] == pytest.approx(0.25, abs=0.02)


def test_compare_arms_is_the_welch_difference_of_contacted_users() -> None:
    log = pd.DataFrame({
        "arm": [CHAMPION] * 4 + ["a"] * 4 + ["a"],
        "sent": [1, 1, 1, 1, 1, 1, 1, 1, 0],          # the last one: control, not compared
        "revenue": [0.0, 10.0, 0.0, 2.0, 20.0, 0.0, 6.0, 2.0, 100.0],
        "cost": [0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0],
    })
    log["expected_revenue"], log["expected_cost"] = log["revenue"], log["cost"]
    log["expected_revenue_control"] = 0.0
    t = compare_arms(log, 1.0).set_index("move")
    a = np.array([18.0, 0.0, 6.0, 2.0])
    b = np.array([0.0, 9.0, 0.0, 2.0])
    assert t.loc["a", "difference"] == pytest.approx(a.mean() - b.mean())
    assert t.loc["a", "se"] == pytest.approx(np.sqrt(a.var(ddof=1) / 4 + b.var(ddof=1) / 4))
    assert t.loc["a", "challenger_users"] == 4 and not t.loc["a", "beats_alone"]


def test_thompson_choice_skips_losers_and_adopted_moves() -> None:
    moves = (_move("loser", ("promotions.c.depth", 0.3)), _move("new", ("caps.max_per_category", 5)),
             _move("won", ("filters.already_bought.lookback_days", 28)))
    cfg = ChallengeConfig(moves, per_round=2, share=0.2, z=1.0)
    tests = pd.DataFrame({"move": ["loser"], "difference": [-5.0], "se": [0.5]})
    picked = [[m.name for m in choose_moves(cfg, RAW, tests, {"won"}, np.random.default_rng(s))]
              for s in range(50)]
    assert not any("loser" in p or "won" in p for p in picked)
    assert sum("new" in p for p in picked) > 10  # an untested move draws from N(0, prior_sd)


def test_adoption_pools_the_tests_of_a_move() -> None:
    root = Path(__file__).resolve().parents[3]
    rules = parse_rules(yaml.safe_load((root / "recsys/conf/rules/default.yaml").read_text()), None)
    moves = [_move("a", ("caps.max_per_category", 5)), _move("b", ("caps.max_per_category", 6))]
    # a: two tests, each short of 1.5 se alone, together above it
    tests = pd.DataFrame({"move": ["a", "a", "b"], "difference": [0.9, 0.9, 0.1],
                          "se": [0.7, 0.7, 0.5]})
    mean, se = pooled(tests, "a")
    assert mean == pytest.approx(0.9) and se == pytest.approx(0.7 / np.sqrt(2))
    new, done = adopt(rules, tests, moves, 1.5)
    assert done == ["a"] and new.caps.max_per_category == 5
    # b passes too but edits the same key and gains less: left out
    tests.loc[2, ["difference", "se"]] = [0.8, 0.1]
    new, done = adopt(rules, tests, moves, 1.5)
    assert done == ["a"] and new.caps.max_per_category == 5
    assert pooled(tests, "c") == (pytest.approx(np.nan, nan_ok=True), np.inf)


def test_bad_challenger_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="per_round"):
        ChallengeConfig((), per_round=4, share=0.25, z=1.0)
    with pytest.raises(ConfigError, match="first_round"):
        ChallengeConfig((), per_round=1, share=0.2, z=1.0, first_round=1)
    with pytest.raises(ConfigError, match="unique"):
        ChallengeConfig((_move("a"), _move("a")), per_round=1, share=0.2, z=1.0)
    with pytest.raises(ConfigError, match="challengers"):
        challenge_config({"per_round": 1, "share": 0.2, "z": 1.0, "moves": [{"name": "x"}]})
    assert challenge_config(None).per_round == 0


def test_moves_must_edit_existing_keys_into_valid_rules() -> None:
    root = Path(__file__).resolve().parents[3]
    raw = yaml.safe_load((root / "recsys/conf/rules/default.yaml").read_text())
    ok = ChallengeConfig((_move("a", ("caps.max_per_category", 5)),), 1, 0.2, 1.0)
    check_moves(ok, raw)
    typo = ChallengeConfig((_move("a", ("caps.max_per_categry", 5)),), 1, 0.2, 1.0)
    with pytest.raises(ConfigError, match=r"moves\[0\] 'a': path 'caps.max_per_categry'"):
        check_moves(typo, raw)
    bad = ChallengeConfig((_move("b", ("promotions.retention_coupon.depth", 1.5)),), 1, 0.2, 1.0)
    with pytest.raises(ConfigError, match=r"moves\[0\] 'b': gives invalid rules"):
        check_moves(bad, raw)
