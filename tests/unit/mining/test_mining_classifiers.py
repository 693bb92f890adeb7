"""Churn / intent classifiers: holdout AUC, skipping, model choice by config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import ConfigError
from recsys.mining.classifiers import make_model, train_classifiers
from recsys.mining.config import ClassifierConfig
from recsys.mining.inputs import MiningInputs

START = pd.Timestamp("2024-01-01")


def _inputs(n_users: int = 120, seed: int = 0, all_loyal: bool = False,
            numeric: tuple[str, ...] = ("age_z",)) -> MiningInputs:
    """Loyal users buy every 3 days until the end; the others stopped after day 20."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        loyal = all_loyal or u % 2 == 0
        last = 90 if loyal else 20
        step = 3 if loyal else 5
        for day in range(int(rng.integers(0, 3)), last, step):
            rows.append((u, int(rng.integers(0, 10)), START + pd.Timedelta(days=day, hours=10)))
    inter = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp"])
    inter["event"], inter["quantity"], inter["price"], inter["channel"] = "purchase", 1, 10.0, "web"
    purchases = inter.assign(amount=10.0)
    users = pd.DataFrame({"user_idx": np.arange(n_users), "user_id": [f"u{i}" for i in range(n_users)],
                          "age_z": rng.normal(size=n_users)})
    items = pd.DataFrame({"item_idx": np.arange(10), "item_id": [f"i{i}" for i in range(10)]})
    return MiningInputs(inter, purchases, users, items, START + pd.Timedelta(days=90), None,  # type: ignore[arg-type]
                        list(numeric))


def _cfg(models: dict[str, dict[str, object]], min_class: int = 3) -> ClassifierConfig:
    return ClassifierConfig(window_days=14, test_size=0.3, min_class_count=min_class, models=models)


def test_churn_is_learned_with_high_holdout_auc() -> None:
    cfg = _cfg({"decision_tree": {"max_depth": 3}, "gradient_boosting": {"n_estimators": 20}})
    rep = train_classifiers(_inputs(), cfg, seed=0)
    churn = rep.summary["churn"]
    assert churn["population"] == 120 and churn["positives"] == 60
    assert set(churn["models"]) == {"decision_tree", "gradient_boosting"}
    assert all(m["auc"] > 0.9 for m in churn["models"].values())
    assert churn["selected"] in churn["models"]
    scores = rep.scores.set_index("user_idx")
    # loyal users get a low churn probability, lapsed ones a high one
    assert scores.loc[0::2, "churn_proba"].mean() < 0.3 < 0.7 < scores.loc[1::2, "churn_proba"].mean()


def test_svm_by_config_and_single_class_is_skipped() -> None:
    rep = train_classifiers(_inputs(numeric=()), _cfg({"svm": {"C": 1.0, "calibration_cv": 3}}), seed=0)
    assert rep.summary["churn"]["models"]["svm"]["auc"] > 0.9
    assert rep.scores["churn_proba"].between(0, 1).all()
    loyal = train_classifiers(_inputs(all_loyal=True, numeric=()), _cfg({"decision_tree": {}}),
                              seed=0)
    assert loyal.summary["churn"]["positives"] == 0
    assert "skipped" in loyal.summary["churn"] and loyal.scores["churn_proba"].isna().all()
    assert "skipped" in loyal.summary["intent"]  # everyone bought in the window


def test_bad_model_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="decision_tree"):
        make_model("decision_tree", {"depth_max": 3}, 0)
    with pytest.raises(ConfigError, match="unknown model"):
        make_model("random_forest", {}, 0)
