"""The two-tower candidate source searches a FAISS item index (the exported one, or one built
from the model's item vectors): it equals exact search under a flat index, and the ranked bundle
carries the vectors and the index so that it serves the offline scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hydra import compose, initialize_config_dir

from recsys.cli._app import CONFIG_DIR
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import ModelError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.ranked import build_pipeline, training_data, training_periods
from recsys.evaluation.toy import make_toy_dataset
from recsys.ranking.candidates import top_of_dense
from recsys.ranking.history import history_as_of
from recsys.ranking.pipeline import Period
from recsys.ranking.sources import EmbeddingSource, TwoTower
from recsys.retrieval.embeddings import StaticEmbeddings
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec
from recsys.serving.ranked import RankedRecommender, export_ranked


def index_settings() -> dict[str, Any]:
    """The two-tower source's index settings (conf/index/flat.yaml by default)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="rank")
    return as_dict(cfg.candidates.sources.two_tower.index)


def flat_index(items: np.ndarray, similarity: str, factory: str = "Flat") -> ItemIndex:
    return ItemIndex.build(items, IndexSpec.from_config({**index_settings(), "factory": factory}),
                           similarity)


def model(n_users: int, n_items: int, seed: int = 0) -> StaticEmbeddings:
    rng = np.random.default_rng(seed)
    return StaticEmbeddings(rng.normal(size=(n_items, 8)).astype(np.float32),
                            rng.normal(size=(n_users, 8)).astype(np.float32), "cosine")


def test_index_search_equals_exact_search_with_exclusions() -> None:
    emb = model(50, 300)
    source = EmbeddingSource(emb, flat_index(emb.items, "cosine"), batch_size=16)
    users = np.arange(0, 50, 3)
    exclude = sp.random(len(users), 300, density=0.05, random_state=1, format="csr")
    got = source.top(users, 25, exclude)
    want = top_of_dense(source.scores(users), 25, exclude)
    np.testing.assert_array_equal(got.rows, want.rows)
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)
    assert not (exclude[got.rows, got.items] != 0).any()


def test_index_of_another_metric_is_refused() -> None:
    emb = model(5, 40)
    with pytest.raises(ModelError, match="searches by"):
        EmbeddingSource(emb, flat_index(emb.items, "l2"), 8)


def test_ranked_bundle_with_a_two_tower_serves_the_offline_scores(
        tmp_path: Path, toy_overrides: list[str]) -> None:
    root = make_toy_dataset(n_users=60, n_items=50).write(tmp_path / "toy")
    ds = load_dataset(root)
    data = prepare_eval_data(ds, "test")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="rank", overrides=[*toy_overrides,
                                                     "candidates.sources.two_tower.enabled=true"])
    spec = {"candidates": as_dict(cfg.candidates), "ranker": as_dict(cfg.ranker)}
    emb = model(data.n_users, data.n_items, seed=2)
    two_tower = TwoTower(emb, flat_index(emb.items, "cosine", "IVF4,Flat"))
    pipeline = build_pipeline(spec, data, two_tower)
    ranker = pipeline.fit(training_periods(training_data(data), False, 0))
    assert "two_tower_score" in ranker.feature_names
    history = history_as_of(data.fit_frame, data.n_users, data.n_items)
    users = data.users[:10]
    ids = np.array([f"u{i}" for i in range(data.n_users)])
    items = np.array([f"i{i}" for i in range(data.n_items)])
    offline = RankedRecommender(pipeline, ranker, history, ids, items)
    served = RankedRecommender.load(export_ranked(tmp_path / "b", spec, pipeline, ranker, history,
                                                  ids, items))
    assert served.pipeline.embedding is not None
    assert served.pipeline.embedding.index.factory == "IVF4,Flat"
    np.testing.assert_array_equal(served.scores(users).to_numpy(), offline.scores(users).to_numpy())
    top = pipeline.rank(ranker, Period(history, users), 5)
    rec = served.recommend(ids[users].tolist(), 5)
    assert rec.groupby("user_idx")["item_idx"].apply(list).to_dict() == {
        int(u): [i for i in top[r] if i >= 0] for r, u in enumerate(users)}
