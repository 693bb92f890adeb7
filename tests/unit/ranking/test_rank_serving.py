"""The ranked bundle serves what was computed offline: same candidates, same scores, same lists;
a ranker trained on another feature set, or a tampered file, is refused at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir

from recsys.cli._app import CONFIG_DIR
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import BundleError, ModelError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.ranked import (
    RankedRanker,
    calibration,
    fit_history,
    fit_ranked,
    period_of,
    source_methods,
)
from recsys.evaluation.toy import make_toy_dataset
from recsys.rules import RuleContext, apply_rules, parse_rules
from recsys.serving.ranked import RankedRecommender, export_ranked, with_top_probability


def spec(toy: list[str], extra: list[str]) -> dict[str, Any]:
    overrides = toy + extra
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="rank", overrides=overrides)
    return {"candidates": as_dict(cfg.candidates), "ranker": as_dict(cfg.ranker),
            "exclude_purchased": False}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, toy_overrides: list[str]) -> Any:
    root = make_toy_dataset(n_users=80, n_items=60).write(tmp_path_factory.mktemp("d") / "toy")
    ds = load_dataset(root)
    data = prepare_eval_data(ds, "test")
    images = tmp_path_factory.mktemp("images")  # image vectors, as a features cache holds them
    rng = np.random.default_rng(0)
    np.save(images / "item_features.npy", rng.normal(size=(data.n_items, 6)).astype(np.float32))
    np.save(images / "item_mask.npy", rng.random(data.n_items) > 0.1)
    toy_overrides = [*toy_overrides, f"candidates.features.image_features={images}",
                     "candidates.sources.new_items.enabled=true",  # with its own budget
                     "candidates.sources.new_items.budget=5",
                     "candidates.features.events={weights:{view:1},smoothing:0.2}",  # taste
                     "candidates.sources.taste.enabled=true", "candidates.sources.taste.budget=5"]
    good = spec(toy_overrides, [])
    pipeline, ranker = fit_ranked(good, data)
    history = fit_history(data, pipeline.cfg.event_weights)
    return ds, data, good, pipeline, ranker, history, toy_overrides


def test_served_scores_and_lists_equal_offline(world: Any, tmp_path: Path) -> None:
    ds, data, good, pipeline, ranker, history, _ = world
    users = data.users[:: max(1, len(data.users) // 15)]
    offline_top = RankedRanker(pipeline, ranker, data).top_k(users, 12)
    offline = RankedRecommender(pipeline, ranker, history, np.array([]), np.array([])).scores(users)
    user_ids = ds.users.sort_values("user_idx")["user_id"].astype(str).to_numpy()
    item_ids = ds.items.sort_values("item_idx")["item_id"].astype(str).to_numpy()
    served = RankedRecommender.load(export_ranked(tmp_path / "b", good, pipeline, ranker, history,
                                                  user_ids, item_ids))
    np.testing.assert_array_equal(served.scores(users).to_numpy(), offline.to_numpy())
    rec = served.recommend(user_ids[users].tolist(), 12)
    for row, u in enumerate(users):
        mine = rec[rec.user_idx == u].sort_values("rank")
        assert mine["item_idx"].tolist() == [i for i in offline_top[row] if i >= 0]
        exact = offline[offline.user_idx == u].set_index("item_idx")["score"]
        np.testing.assert_array_equal(mine["score"].to_numpy(), exact[mine["item_idx"]].to_numpy())
    assert {"image_sim_recent", "taste_log_sum", "taste_score"} <= set(served.ranker.feature_names)
    assert rec["purchase_probability"].between(0, 1).all()
    assert (rec["pushed_by"] != "").any()
    assert rec.groupby("user_idx")["score"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_new_items_source_keeps_its_own_budget(world: Any) -> None:
    _, data, _, pipeline, _, _, _ = world
    period = period_of(data, False, False, pipeline.cfg.event_weights)
    lists = pipeline.candidates(period)
    assert 0 < np.bincount(lists["new_items"].rows).max() <= 5
    assert np.bincount(lists["taste"].rows).max() == 5  # every item is a taste candidate
    assert np.bincount(lists["repurchase"].rows).max() > 5
    bought = np.unique(period.history.frame["item_idx"].to_numpy())
    assert not np.isin(lists["new_items"].items, bought).any()


def test_bundle_refuses_other_features_and_tampered_files(world: Any, tmp_path: Path) -> None:
    _, data, good, pipeline, _, history, toy = world
    other = spec(toy, ["candidates.features.events=null", "candidates.sources.taste.enabled=false"])
    _, other_ranker = fit_ranked(other, data)  # trained without the taste features
    ids = np.array([str(i) for i in range(data.n_users)])
    items = np.array([str(i) for i in range(data.n_items)])
    bad = export_ranked(tmp_path / "bad", good, pipeline, other_ranker, history, ids, items)
    with pytest.raises(ModelError, match="other features"):
        RankedRecommender.load(bad)
    _, ranker = fit_ranked(good, data)
    for name in ("history.parquet", "events.parquet"):
        tampered = export_ranked(tmp_path / name, good, pipeline, ranker, history, ids, items)
        (tampered / name).write_bytes(b"tampered")
        with pytest.raises(BundleError, match="checksum"):
            RankedRecommender.load(tampered)


def test_rules_condition_on_the_purchase_probability(world: Any, tmp_path: Path) -> None:
    ds, data, _, pipeline, ranker, history, _ = world
    ids = ds.users.sort_values("user_idx")["user_id"].astype(str).to_numpy()
    items = ds.items.sort_values("item_idx")
    rec = RankedRecommender(pipeline, ranker, history, ids, items["item_id"].astype(str).to_numpy())
    recs = rec.recommend(ids[data.users].tolist(), 5)
    users = with_top_probability(ds.users.sort_values("user_idx").reset_index(drop=True), recs)
    band = [float(users["top_purchase_probability"].quantile(q)) for q in (0.25, 0.75)]
    raw = yaml.safe_load((Path(CONFIG_DIR) / "rules" / "default.yaml").read_text())
    raw["filters"], raw["pricing"]["rules"] = [], []
    raw["boosts"] = [{"name": "likely", "when": {"column": "purchase_probability", "op": ">=",
                                                  "value": float(recs["purchase_probability"].median())},
                      "add": 0.1}]
    raw["promotions"] = [{"name": "coupon_band", "priority": 10, "offer": "coupon", "depth": 0.1,
                          "fixed_cost": 0.0, "when": {"column": "top_purchase_probability",
                                                      "op": "between", "value": band}}]
    raw["caps"]["campaign_budget"] = None
    ctx = RuleContext(users.assign(marketing_consent=True, social_image_consent=False),
                      items.reset_index(drop=True).assign(margin=0.0, days_since_first_seen=30.0),
                      history.frame, pd.DataFrame(columns=["level", "antecedents", "consequents",
                                                           "lift"]), pd.Timestamp("2024-02-01"))
    plan = apply_rules(recs, ctx, parse_rules(raw)).recommendations
    per_user = plan.groupby("user_idx")["promotion"].first()
    p = users.set_index("user_idx").loc[per_user.index, "top_purchase_probability"]
    inside = p.between(*band)
    assert inside.any() and (~inside).any()
    assert (per_user[inside] == "coupon_band").all() and (per_user[~inside] == "none").all()
    assert plan["rules_fired"].str.contains("likely").any()
    # the explanation names the features that pushed each item up, as the ranker served them
    pushed = recs.set_index(["user_idx", "item_idx"])["pushed_by"]
    explained = [e["pushed_by"] for e in plan["explanation"].array._pa_array.to_pylist()]
    assert explained == pushed.loc[list(zip(plan.user_idx, plan.item_idx, strict=True))].tolist()
    assert any(e and "+" in e for e in explained)


def test_calibration_covers_every_candidate_and_each_users_top_k(world: Any) -> None:
    _, data, _, pipeline, ranker, _, _ = world
    period = period_of(data, False, True, pipeline.cfg.event_weights)
    calib = calibration(pipeline, ranker, period, 5)
    top = pipeline.rank(ranker, period, 5)
    assert calib["top5"]["pairs"] == int((top >= 0).sum())
    assert calib["candidates"]["pairs"] == len(pipeline.score_table(period).cands)
    rows = calib["top5"]["table"]
    assert sum(r["pairs"] for r in rows) == calib["top5"]["pairs"]
    observed = sum(r["observed"] * r["pairs"] for r in rows) / calib["top5"]["pairs"]
    assert observed == pytest.approx(calib["top5"]["positive_rate"])


def test_methods_of_one_pipeline_share_one_history(world: Any) -> None:
    """The ranked method and each source alone rank from one history (read once), with the
    lists each would give from a history of its own."""
    _, data, _, pipeline, ranker, _, _ = world
    methods = source_methods(pipeline, ranker, data)
    users = data.users[:12]
    tops = {name: m.top_k(users, 5) for name, m in methods.items()}
    assert len({id(m.history) for m in methods.values()}) == 1 and len(methods) > 2
    for name, method in methods.items():
        alone = RankedRanker(pipeline, ranker, data, source=method.source)
        np.testing.assert_array_equal(alone.top_k(users, 5), tops[name])
