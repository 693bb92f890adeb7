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
from recsys.errors import ConfigError, ModelError
from recsys.evaluation import ranked
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.ranked import (
    build_pipeline,
    training_data,
    training_periods,
    with_two_tower,
)
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


def two_tower_pipeline(tmp_path: Path, overrides: list[str], seed: int = 2
                       ) -> tuple[Any, Any, dict[str, Any], TwoTower]:
    """Toy test data, the rank config's spec and a random two-tower over its users and items."""
    data = prepare_eval_data(load_dataset(make_toy_dataset(n_users=60, n_items=50)
                                          .write(tmp_path / "toy")), "test")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="rank", overrides=[
            *overrides, "candidates.sources.two_tower.enabled=true"])
    spec = {"candidates": as_dict(cfg.candidates), "ranker": as_dict(cfg.ranker),
            "exclude_purchased": False, "two_tower_checkpoint": "model.ckpt"}
    emb = model(data.n_users, data.n_items, seed=seed)
    return data, cfg, spec, TwoTower(emb, flat_index(emb.items, "cosine"))


def test_earlier_periods_carry_the_two_tower_as_missing(tmp_path: Path,
                                                        toy_overrides: list[str]) -> None:
    data, _, spec, tt = two_tower_pipeline(tmp_path, toy_overrides)
    pipeline = build_pipeline(spec, data, tt)
    periods = with_two_tower(pipeline, training_periods(training_data(data), False, 2))
    assert [p.two_tower for p in periods] == [True, False, False]
    first, earlier = pipeline.score_table(periods[0]), pipeline.score_table(periods[1])
    assert first.features.names == earlier.features.names
    names = list(first.features.names)
    for col in ("two_tower_score", "two_tower_rank", "two_tower_sim"):
        assert np.isnan(earlier.features.values[:, names.index(col)]).all()
        assert not np.isnan(first.features.values[:, names.index(col)]).all()
    # the earlier period's candidates are the other sources' only
    others = [n for n in pipeline.source_names() if n != "two_tower"]
    ranks = earlier.features.values[:, [names.index(f"{n}_rank") for n in others]]
    assert (~np.isnan(ranks)).any(axis=1).all()
    # the similarity of every pair is the model's exact score
    sim = first.features.values[:, names.index("two_tower_sim")]
    source = EmbeddingSource(tt.model, tt.index, 16)
    exact = source.scores(first.cands.users)[first.cands.rows, first.cands.items]
    np.testing.assert_allclose(sim, exact, rtol=1e-4, atol=1e-5)
    assert "two_tower_sim" in pipeline.fit(periods).feature_names
    dropped = build_pipeline({**spec, "ranker": {**spec["ranker"], "two_tower_earlier": "drop"}},
                             data, tt)
    assert len(with_two_tower(dropped, periods)) == 1
    bad = {**spec, "ranker": {**spec["ranker"], "two_tower_earlier": "some"}}
    with pytest.raises(ConfigError, match=r"ranker\.two_tower_earlier"):
        build_pipeline(bad, data, tt)


def test_tuning_ranks_with_the_two_tower(tmp_path: Path, toy_overrides: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data, _, spec, tt = two_tower_pipeline(tmp_path, toy_overrides)
    val = prepare_eval_data(load_dataset(Path(data.manifest_path).parent), "val")
    seen: list[tuple[str, ...]] = []
    fit = ranked.TwoStage.fit

    def record(self: Any, periods: list[Period], source: str = "") -> Any:
        out = fit(self, periods, source)
        seen.append(out.feature_names)
        return out

    monkeypatch.setattr(ranked, "two_tower", lambda spec, data, index=None: tt)
    monkeypatch.setattr(ranked.TwoStage, "fit", record)
    held, top = ranked.tune_split_top(spec, val, 0.5, 0, 5)
    assert len(held) == len(top) and "two_tower_sim" in seen[0]


def test_a_checkpoint_of_another_dataset_is_refused(tmp_path: Path, toy_overrides: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.evaluation import guard

    data, _, spec, _ = two_tower_pipeline(tmp_path, toy_overrides)
    monkeypatch.setattr(guard, "checkpoint_fingerprint", lambda path: "0123456789abcdef")
    with pytest.raises(ModelError, match="data_fingerprint '0123456789abcdef'"):
        ranked.fit_ranked(spec, data)
