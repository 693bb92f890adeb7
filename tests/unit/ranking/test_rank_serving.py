"""The ranked bundle serves what was computed offline: same candidates, same scores, same lists;
a ranker trained on another feature set, or a tampered file, is refused at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from recsys.cli._app import CONFIG_DIR
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import BundleError, ModelError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.ranked import RankedRanker, fit_ranked
from recsys.evaluation.toy import make_toy_dataset
from recsys.ranking.history import history_as_of
from recsys.serving.ranked import RankedRecommender, export_ranked


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
    good = spec(toy_overrides, [])
    pipeline, ranker = fit_ranked(good, data)
    history = history_as_of(data.fit_frame, data.n_users, data.n_items)
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
    assert rec["purchase_probability"].between(0, 1).all()
    assert (rec["pushed_by"] != "").any()
    assert rec.groupby("user_idx")["score"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_bundle_refuses_other_features_and_tampered_files(world: Any, tmp_path: Path) -> None:
    _, data, good, pipeline, _, history, toy = world
    other = spec(toy, ["candidates.features.affinity_columns=[]"])
    _, other_ranker = fit_ranked(other, data)  # trained without the affinity features
    ids = np.array([str(i) for i in range(data.n_users)])
    items = np.array([str(i) for i in range(data.n_items)])
    bad = export_ranked(tmp_path / "bad", good, pipeline, other_ranker, history, ids, items)
    with pytest.raises(ModelError, match="other features"):
        RankedRecommender.load(bad)
    _, ranker = fit_ranked(good, data)
    ok = export_ranked(tmp_path / "ok", good, pipeline, ranker, history, ids, items)
    (ok / "history.parquet").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="checksum"):
        RankedRecommender.load(ok)
