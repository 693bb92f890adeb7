"""Rankers and baselines: batched full ranking against a per-user loop oracle, exclusion,
history-first blending, popularity windows and the repurchase heuristic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.errors import ConfigError, ModelError
from recsys.evaluation.baselines import (
    PopularityRanker,
    RepurchaseRanker,
    history_weights,
    popularity_scores,
)
from recsys.evaluation.rankers import EmbeddingRanker, HistoryFirstRanker, IndexRanker
from recsys.retrieval.index_spec import load_spec


def loop_oracle(users: np.ndarray, items: np.ndarray, user_idx: np.ndarray, k: int,
                exclude: sp.csr_matrix | None) -> np.ndarray:
    out = []
    for u in user_idx:
        scores = items @ users[u]
        if exclude is not None:
            scores[exclude[u].indices] = -np.inf
        order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
        out.append((order + [-1] * k)[:k])
    return np.array(out)


@pytest.fixture()
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(120, 8)).astype(
        np.float32)


def test_embedding_ranker_matches_loop_with_exclusion(vectors: tuple[np.ndarray, np.ndarray]
                                                      ) -> None:
    users, items = vectors
    rng = np.random.default_rng(1)
    exclude = sp.csr_matrix(rng.random((50, 120)) < 0.2)
    ranker = EmbeddingRanker(users, items, "dot", batch_size=7)
    user_idx = np.array([3, 17, 0, 49, 22, 5, 8, 9, 10])
    got = ranker.top_k(user_idx, 15, exclude)
    np.testing.assert_array_equal(got, loop_oracle(users, items, user_idx, 15, exclude))
    assert not np.isin(got[0], exclude[3].indices).any()


def test_embedding_ranker_subset_of_users_and_missing_user(vectors: tuple[np.ndarray, np.ndarray]
                                                           ) -> None:
    users, items = vectors
    ranker = EmbeddingRanker(users[[4, 9]], items, "dot", user_idx=np.array([4, 9]))
    np.testing.assert_array_equal(ranker.top_k(np.array([9]), 5),
                                  loop_oracle(users, items, np.array([9]), 5, None))
    with pytest.raises(ModelError, match="no embedding for user_idx"):
        ranker.top_k(np.array([5]), 5)
    with pytest.raises(ConfigError, match="catalogue size 120"):
        ranker.top_k(np.array([4]), 121)


def test_index_ranker_flat_equals_exact(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    users, items = vectors
    exact = EmbeddingRanker(users, items, "cosine")
    via_index = IndexRanker.build(exact, load_spec("flat"))
    exclude = sp.csr_matrix(np.random.default_rng(2).random((50, 120)) < 0.1)
    u = np.arange(50)
    np.testing.assert_array_equal(via_index.top_k(u, 10, exclude), exact.top_k(u, 10, exclude))


def test_history_first_places_own_items_then_base_without_duplicates(
    vectors: tuple[np.ndarray, np.ndarray],
) -> None:
    users, items = vectors
    base = EmbeddingRanker(users, items, "dot")
    history = sp.csr_matrix(([3.0, 1.0, 2.0, 5.0], ([0, 0, 0, 1], [7, 8, 9, 7])), shape=(50, 120))
    blend = HistoryFirstRanker(history, base)
    top = blend.top_k(np.array([0, 1, 2]), 6)
    assert top[0, :3].tolist() == [7, 9, 8]
    assert top[1, 0] == 7
    for row in top:
        assert len(set(row.tolist())) == 6
    np.testing.assert_array_equal(top[2], base.top_k(np.array([2]), 6)[0])
    exclude = sp.csr_matrix(([1.0], ([0], [9])), shape=(50, 120))
    top = blend.top_k(np.array([0]), 4, exclude)
    assert top[0, :2].tolist() == [7, 8] and 9 not in top[0]
    capped = HistoryFirstRanker(history, base, max_history=1).top_k(np.array([0]), 4)
    without_7 = sp.csr_matrix(([1.0], ([0], [7])), shape=(50, 120))
    assert capped[0, 0] == 7
    np.testing.assert_array_equal(capped[0, 1:], base.top_k(np.array([0]), 3, without_7)[0])


def frame(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame({"user_idx": [r[0] for r in rows], "item_idx": [r[1] for r in rows],
                         "timestamp": pd.to_datetime([r[2] for r in rows])})


def test_popularity_all_time_and_recent_window() -> None:
    hist = frame([(0, 1, "2024-01-01"), (1, 1, "2024-01-02"), (2, 1, "2024-01-03"),
                  (0, 2, "2024-01-30"), (1, 2, "2024-01-31"), (2, 3, "2024-01-31")])
    top = PopularityRanker(popularity_scores(hist, 5)).top_k(np.array([0, 1]), 3)
    assert top.tolist() == [[1, 2, 3], [1, 2, 3]]
    recent = PopularityRanker(popularity_scores(hist, 5, window_days=7)).top_k(np.array([0]), 4)
    assert recent[0].tolist() == [2, 3, 1, 0]
    excl = sp.csr_matrix(([1.0], ([1], [1])), shape=(3, 5))
    assert PopularityRanker(popularity_scores(hist, 5)).top_k(np.array([1]), 2, excl)[0].tolist(
    ) == [2, 3]


def test_repurchase_ranks_own_history_by_recency_then_fallback() -> None:
    hist = frame([(0, 4, "2024-01-01"), (0, 4, "2024-01-02"), (0, 3, "2024-01-30"),
                  (1, 2, "2024-01-31"), (2, 2, "2024-01-31"), (2, 0, "2024-01-31")])
    fallback = popularity_scores(hist, 6)
    counts = RepurchaseRanker(history_weights(hist, 3, 6), fallback)
    decayed = RepurchaseRanker(history_weights(hist, 3, 6, half_life_days=2.0), fallback)
    assert counts.top_k(np.array([0]), 3)[0].tolist() == [4, 3, 2]
    assert decayed.top_k(np.array([0]), 3)[0].tolist() == [3, 4, 2]
    assert decayed.top_k(np.array([1]), 2)[0].tolist() == [2, 4]


def test_repurchase_keeps_nearly_equal_weights_apart_and_breaks_ties_by_fallback() -> None:
    # weights 1 + 1e-6 vs 1: float32 scores of 2 + w merged them; 0.9991 vs 0.999 stay apart
    # although the fallback difference (x 1e-3) used to outweigh their gap
    w = sp.csr_matrix(([1.0, 1.0 + 1e-6, 0.999, 0.9991, 0.5, 0.5], ([0] * 6, [0, 1, 2, 3, 4, 5])),
                      shape=(1, 8))
    fallback = np.array([0.9, 0.1, 0.8, 0.0, 0.2, 0.3, 0.99, 0.5])
    top = RepurchaseRanker(w, fallback).top_k(np.array([0]), 8)[0].tolist()
    assert top == [1, 0, 3, 2, 5, 4, 6, 7]


def test_score_rankers_chunk_by_catalogue_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.retrieval import topk

    hist = frame([(u, i, "2024-01-01") for u in range(6) for i in range(u % 4, 9, 2)])
    ranker = RepurchaseRanker(history_weights(hist, 6, 12), popularity_scores(hist, 12))
    exclude = sp.csr_matrix(([1.0, 1.0], ([1, 4], [3, 11])), shape=(6, 12))
    users = np.array([5, 1, 4, 0, 3])
    whole = ranker.top_k(users, 12, exclude)
    monkeypatch.setattr(topk, "SCORE_CHUNK_FLOATS", 24)  # two users per chunk
    np.testing.assert_array_equal(ranker.top_k(users, 12, exclude), whole)
    assert 3 not in whole[1] and 11 not in whole[2] and (whole[1] == -1).sum() == 1

def test_index_ranker_tunes_its_search_parameter_on_user_vectors() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(10, 8))
    items = centres[rng.integers(0, 10, 2000)] + 0.3 * rng.normal(size=(2000, 8))
    users = centres[rng.integers(0, 10, 300)] + 0.3 * rng.normal(size=(300, 8))
    exact = EmbeddingRanker(users, items, "cosine")
    spec = load_spec("ivf_flat", search_params={"nprobe": 3}, recall_queries=100)
    ranked = IndexRanker.build(exact, spec)
    assert ranked.index.params["nprobe"] in spec.tune_values
    u = np.arange(300)
    got, want = ranked.top_k(u, 10), exact.top_k(u, 10)
    overlap = np.mean([len(np.intersect1d(g, w)) / 10 for g, w in zip(got, want, strict=True)])
    assert overlap >= 0.9
