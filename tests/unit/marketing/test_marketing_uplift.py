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
from recsys.marketing.uplift import features, incremental_at_budget, uplift_model


def test_two_model_recovers_a_planted_uplift() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=(n, 2))
    treated = rng.random(n) < 0.5
    p = 0.05 + treated * np.where(x[:, 0] > 0, 0.15, 0.0)  # only x0 > 0 responds to the coupon
    y = rng.random(n) < p
    for approach in ("two_model", "transformed_outcome"):
        model = uplift_model({"approach": approach, "kind": "logistic", "max_iter": 500}, 0)
        u = model.fit(x, y, treated).predict(np.array([[1.5, 0.0], [-1.5, 0.0]]))
        assert u[0] > 0.08 and u[1] < 0.05, approach
    with pytest.raises(ConfigError, match="approach"):
        uplift_model({"approach": "magic"}, 0)


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
        "experiment.replicates=8", "n_boot=50", f"hydra.run.dir={tmp_path / 'h'}",
        "campaign_overrides=['backtest.n_boot=20']"])
    uplift_cli.main()
    table = pd.read_csv(out / "uplift.csv").set_index("method")
    assert set(table.index) == {"uplift_model", "churn_rule", "random", "oracle"}
    assert (table["coupons"] == table["coupons"].iloc[0]).all() and table["coupons"].iloc[0] > 0
    # the world's own uplift is the best possible ranking at any budget
    assert (table.loc["oracle", "incremental_per_coupon"]
            >= table["incremental_per_coupon"].max() - 1e-12)
    summary = json.loads((out / "uplift.json").read_text())
    learners = {"gradient_boosting", "logistic", "transformed_logistic"}
    assert summary["learner"] in learners and set(summary["validation_qini_auc"]) == learners
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
