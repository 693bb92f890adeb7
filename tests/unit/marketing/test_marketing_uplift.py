"""recsys-uplift on the small world: outputs, learner chosen on validation users, the rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from marketing_world import SYNTH

from recsys.cli import campaign as campaign_cli
from recsys.cli import uplift as uplift_cli
from recsys.errors import ConfigError, DataError
from recsys.marketing.uplift import (
    arm_rows,
    features,
    fit_model,
    incremental_at_budget,
    paired_ratio_ci,
    uplift_model,
)
from recsys.marketing.uplift_features import PlanFeatureConfig, plan_features


def test_two_model_recovers_a_planted_uplift() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=(n, 2))
    treated = rng.random(n) < 0.5
    p = 0.05 + treated * np.where(x[:, 0] > 0, 0.15, 0.0)  # only x0 > 0 responds to the coupon
    y = rng.random(n) < p
    for approach in ("two_model", "transformed_outcome", "interacted"):
        model = uplift_model({"approach": approach, "kind": "logistic", "max_iter": 500}, 0, [0])
        u = model.fit(x, y, treated).predict(np.array([[1.5, 0.0], [-1.5, 0.0]]))
        assert u[0] > 0.08 and u[1] < 0.05, approach
    with pytest.raises(ConfigError, match="approach"):
        uplift_model({"approach": "magic"}, 0)


def test_weighted_arm_rows_fit_like_the_stacked_log() -> None:
    rng = np.random.default_rng(1)
    users = np.repeat(["a", "b", "c", "d"], 50)
    group = np.where(rng.random(len(users)) < 0.5, "treatment", "control")
    log = pd.DataFrame({"user_id": users, "group": group,
                        "converted": (rng.random(len(users)) < 0.3).astype(int)})
    rows = arm_rows(log)
    assert rows.weight.sum() == len(log)
    assert rows.weight[rows.converted == 1].sum() == log["converted"].sum()
    x = pd.DataFrame({"f": [0.0, 1.0, 2.0, 3.0]}, index=list("abcd"))
    params = {"approach": "two_model", "kind": "logistic", "C": 1e6, "max_iter": 2000}
    stacked = uplift_model(params, 0).fit(x.loc[log["user_id"]].to_numpy(),
                                          log["converted"].to_numpy(),
                                          (log["group"] == "treatment").to_numpy())
    weighted = fit_model(params, 0, [], x, log)
    np.testing.assert_allclose(weighted.predict(x.to_numpy()), stacked.predict(x.to_numpy()),
                               atol=1e-4)


def test_paired_ratio_of_top_sets_at_the_rules_budget() -> None:
    ids = list("abcdef")
    gain = pd.Series([0.6, 0.5, 0.1, 0.1, 0.0, 0.0], index=ids)
    model = pd.Series([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], index=ids)
    churn = pd.Series([0.0, 0.0, 0.0, 0.0, 0.9, 0.8], index=ids)   # targets e and f
    targeted = churn >= 0.7
    # at 2 coupons the model takes a and b (mean gain 0.60), the churn rule e and f (0.05)
    est, lo, hi = paired_ratio_ci(model, churn, gain + 0.05, targeted, 200, 0.9, 0)
    assert est == pytest.approx(0.60 / 0.05)
    assert lo <= est <= hi


def test_plan_features_by_hand() -> None:
    plan = pd.DataFrame({
        "user_id": ["a", "a", "b"], "user_idx": [0, 0, 1], "item_idx": [0, 1, 1],
        "channel": ["sms", "sms", "email"], "score_before": [0.5, 0.25, 1.0],
        "price": [10.0, 20.0, 20.0],
        "send_time": pd.to_datetime(["2024-01-01 10:00"] * 2 + ["2024-01-01 23:00"])})
    users = pd.DataFrame({"user_idx": [0, 1], "user_id": ["a", "b"],
                          "preferred_channel": ["sms", "sms"], "active_hour": [12, 1],
                          "frequency": [3.0, 0.0]})
    items = pd.DataFrame({"price": [10.0, 20.0], "category": ["x", "y"]})
    history = pd.DataFrame({"user_idx": [0, 0, 0, 1], "item_idx": [0, 0, 1, 1],
                            "event": ["view", "purchase", "purchase", "view"],
                            "price": [10.0, 8.0, 20.0, 20.0]})
    cfg = PlanFeatureConfig(("category",), 1.0, "active_hour", ("frequency",))
    f = plan_features(plan, users, items, history, cfg)
    assert list(f.index) == ["a", "b"]
    assert f.loc["a", "plan_items"] == 2 and f.loc["a", "plan_score_sum"] == 0.75
    assert f.loc["a", "hour_gap"] == 2 and f.loc["b", "hour_gap"] == 2   # 23h vs 1h: 2 hours
    assert f.loc["a", "preferred_sent"] == 1 and f.loc["b", "preferred_sent"] == 0
    assert f.loc["a", "discount_share"] == 0.5 and np.isnan(f.loc["b", "discount_share"])
    assert f.loc["a", "log_events"] == pytest.approx(np.log(4))
    # overall category shares: x 2/4, y 2/4; user a: 2 of 3 events on x, 1 on y (prior 1)
    ax, ay = np.log((2 + 0.5) / 4 * 2), np.log((1 + 0.5) / 4 * 2)
    assert f.loc["a", "affinity_category"] == pytest.approx((ax + ay) / 2)
    assert f.loc["a", "affinity_lse"] == pytest.approx(np.log(np.exp(ax) + np.exp(ay)))
    assert f.loc["a", "log_frequency"] == pytest.approx(np.log(4))
    with pytest.raises(DataError, match="affinity") as err:
        plan_features(plan, users, items, history, PlanFeatureConfig(("colour",), 1.0,
                                                                     "active_hour", ()))
    assert err.value.column == "colour"


def test_incremental_at_budget_takes_the_top_users() -> None:
    truth = pd.DataFrame({"p_treated": [0.5, 0.2, 0.1], "p_control": [0.1, 0.1, 0.1]},
                         index=["a", "b", "c"])
    est, lo, hi = incremental_at_budget(pd.Series([3.0, 2.0, 1.0], index=truth.index), truth, 2,
                                        50, 0.9, 0)
    assert est == pytest.approx((0.4 + 0.1) / 2) and lo <= est <= hi


def test_features_need_their_columns() -> None:
    users = pd.DataFrame({"user_id": ["a", "b"], "age": [20.0, None], "band": ["x", "y"]})
    x = features(users, ["age"], ["band"], "users")
    assert list(x.columns) == ["age", "band_x", "band_y"] and list(x.index) == ["a", "b"]
    with pytest.raises(DataError, match="uplift feature") as err:
        features(users, ["income"], [], "users")
    assert err.value.column == "income"


def test_uplift_app_writes_scores_and_the_uplift_rule_uses_them(
        synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "uplift"
    monkeypatch.setattr(sys, "argv", [
        "recsys-uplift", *SYNTH, f"paths.output_dir={synth}", f"output_dir={out}",
        "experiment.replicates=8", "experiment.seeds=[3]", "n_boot=50", f"hydra.run.dir={tmp_path / 'h'}",
        "campaign_overrides=['backtest.n_boot=20']"])
    uplift_cli.main()
    table = pd.read_csv(out / "uplift.csv").set_index("method")
    assert set(table.index) == {"uplift_model", "churn_rule", "random", "oracle"}
    assert (table["coupons"] == table["coupons"].iloc[0]).all() and table["coupons"].iloc[0] > 0
    # the world's own uplift is the best possible ranking at any budget
    assert (table.loc["oracle", "incremental_per_coupon"]
            >= table["incremental_per_coupon"].max() - 1e-12)
    summary = json.loads((out / "uplift.json").read_text())
    learners = {"interacted_logistic", "gradient_boosting", "logistic", "transformed_logistic"}
    assert summary["learner"] in learners and set(summary["validation_qini_auc"]) == learners
    assert set(summary["learners_per_fold"]) <= learners and len(summary["seeds"]) == 1
    assert "affinity_lse" in summary["features"] and "hour_gap" in summary["interacted"]
    lo, hi = summary["uplift_vs_churn_rule_ci"]
    assert lo <= summary["uplift_vs_churn_rule"] <= hi
    scores = pd.read_parquet(out / "uplift_scores.parquet")
    assert scores["user_idx"].is_unique and scores["uplift_targeted"].sum() > 0
    assert (out / "qini.png").stat().st_size > 0
    campaign = tmp_path / "campaign"
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", *SYNTH, f"paths.output_dir={synth}", "rules=uplift",
        f"context.user_columns_path={out / 'uplift_scores.parquet'}", f"output_dir={campaign}",
        "backtest.n_boot=20", f"hydra.run.dir={tmp_path / 'h2'}"])
    campaign_cli.main()
    plan = pd.read_parquet(campaign / "plan.parquet").drop_duplicates("user_idx")
    got = plan.loc[plan["promotion"] == "uplift_coupon", "user_idx"]
    targeted = set(scores.loc[scores["uplift_targeted"], "user_idx"])
    assert len(got) > 0 and set(got) <= targeted
