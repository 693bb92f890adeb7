"""Candidate lists: budget, ties, exclusion, merge and candidate recall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.errors import ConfigError
from recsys.ranking.candidates import merge, recall_table, top_of_dense, top_of_sparse
from recsys.ranking.config import ranking_config
from recsys.ranking.history import history_as_of
from recsys.ranking.sources import (
    CoPurchaseSource,
    PopularitySource,
    RepurchaseSource,
    SiblingSource,
    TasteSource,
)


def toy_history() -> pd.DataFrame:
    return pd.DataFrame({
        "user_idx": [0, 0, 0, 1, 1, 2],
        "item_idx": [1, 1, 2, 2, 3, 4],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-09", "2024-01-08",
                                     "2024-01-09", "2024-01-02"]),
    })


def test_sparse_top_keeps_budget_breaks_ties_by_item_and_drops_excluded() -> None:
    scores = sp.csr_matrix(np.array([[0.0, 2.0, 2.0, 1.0], [3.0, 0.0, 0.0, 5.0]]))
    got = top_of_sparse(scores, 2, exclude=sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 0, 1]])))
    assert got.rows.tolist() == [0, 0, 1]
    assert got.items.tolist() == [1, 2, 0]          # tie 2.0: lower item first; item 3 excluded
    assert got.ranks.tolist() == [0, 1, 0]


def test_dense_top_follows_the_same_rule() -> None:
    got = top_of_dense(np.array([[1.0, 3.0, 3.0, 0.5]]), 3)
    assert got.items.tolist() == [1, 2, 0]


@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_budget_must_be_a_positive_integer(budget: object) -> None:
    hist = history_as_of(toy_history(), 3, 5)
    with pytest.raises(ConfigError, match="budget"):
        RepurchaseSource(hist, None).top(np.array([0]), budget)  # type: ignore[arg-type]


def test_sources_propose_what_they_should() -> None:
    hist = history_as_of(toy_history(), 3, 5)
    rep = RepurchaseSource(hist, half_life_days=None).top(np.array([0, 1]), 10)
    assert rep.items[rep.rows == 0].tolist() == [1, 2]   # bought twice first
    co = CoPurchaseSource(hist, neighbours=5, shrink=0.0, half_life_days=None).top(np.array([1]), 10)
    assert 1 in co.items  # item 1 co-bought with item 2 by user 0
    sib = SiblingSource(hist, np.array([0, 0, 1, 1, 2]), None, None).top(np.array([2]), 10)
    assert sib.items.tolist() == [4]  # only item 4 shares user 2's group
    pop = PopularitySource(hist, window_days=2, segments=np.array([0, 1, 1])).top(np.array([2]), 2)
    assert pop.items.tolist()[0] in (2, 3)  # segment 1 bought 2 and 3 lately


def test_merge_keeps_each_sources_score_and_rank_and_recall_counts_covered_purchases() -> None:
    hist = history_as_of(toy_history(), 3, 5)
    users = np.array([0, 1])
    lists = {"a": RepurchaseSource(hist, None).top(users, 5),
             "b": PopularitySource(hist, None).top(users, 1)}
    cands = merge(users, 5, lists)
    assert len(np.unique(cands.keys)) == len(cands)
    row0_item1 = np.flatnonzero((cands.rows == 0) & (cands.items == 1))[0]  # both propose it
    assert cands.ranks["a"][row0_item1] == 0 and cands.ranks["b"][row0_item1] == 0
    row0_item2 = np.flatnonzero((cands.rows == 0) & (cands.items == 2))[0]  # only "a" does
    assert cands.ranks["a"][row0_item2] == 1 and np.isnan(cands.scores["b"][row0_item2])
    truth = sp.csr_matrix(np.array([[0, 0, 1, 0, 1], [0, 0, 0, 1, 0]]))
    table = recall_table(lists, truth, [1, 5])
    assert table["a"]["@5"] == pytest.approx(2 / 3) and table["a"]["@1"] == 0.0
    assert table["b"]["@1"] == 0.0 and table["union"]["@5"] == pytest.approx(2 / 3)


def random_frame(rng: np.random.Generator, n_items: int, n_rows: int) -> pd.DataFrame:
    """``n_rows`` purchases of 20 users over ``n_items`` items and 40 days."""
    return pd.DataFrame({"user_idx": rng.integers(0, 20, n_rows),
                         "item_idx": rng.integers(0, n_items, n_rows),
                         "timestamp": pd.Timestamp("2024-01-01")
                         + pd.to_timedelta(rng.integers(0, 40, n_rows), "D")})


def test_popularity_top_equals_ranking_its_dense_scores() -> None:
    rng = np.random.default_rng(0)
    hist = history_as_of(random_frame(rng, 30, 300), 20, 30)
    source = PopularitySource(hist, 14.0, segments=rng.integers(-1, 3, 20))
    users = np.arange(20)
    exclude = sp.csr_matrix((rng.random((20, 30)) < 0.2).astype(float))
    fast = source.top(users, 7, exclude)
    slow = top_of_dense(source.scores(users), 7, exclude)
    for field in ("rows", "items", "ranks"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field))
    np.testing.assert_allclose(fast.scores, slow.scores, rtol=1e-6)


def test_copurchase_per_candidate_scores_as_the_itemknn_baseline() -> None:
    from recsys.evaluation.baselines.itemknn import fit_itemknn

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"user_idx": rng.integers(0, 40, 500), "item_idx": rng.integers(0, 25, 500),
                          "timestamp": pd.Timestamp("2024-01-01")})
    hist = history_as_of(frame, 40, 25)
    source = CoPurchaseSource(hist, neighbours=6, shrink=2.0, half_life_days=None,
                              per_candidate=True)
    binary = sp.csr_matrix(hist.counts > 0, dtype=np.float32)
    reference = fit_itemknn(binary, k=6, shrink=2.0).scores(np.arange(40)).numpy()
    mine = (sp.csr_matrix(binary) @ source.similar).toarray()
    np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6)


def test_new_items_are_the_unbought_ones_ranked_by_the_users_taste() -> None:
    hist = history_as_of(toy_history(), 3, 7)  # items 0, 5 and 6 were never bought
    colour = np.array([0, 0, 1, 1, 2, 1, 2])   # user 0 bought colours 0, 0, 1; user 2 colour 2
    source = TasteSource(hist, {"colour": colour}, max_purchases=0, smoothing=0.1)
    got = source.top(np.array([0, 2]), 10)
    assert got.items[got.rows == 0].tolist() == [0, 5, 6]  # 2/3 colour 0, 1/3 colour 1, none 2
    assert got.items[got.rows == 1].tolist() == [6, 0, 5]  # colour 2 first, then item order
    share = np.log(np.array([2 / 3, 1 / 3, 0.0]) + 0.1)
    assert np.allclose(got.scores[got.rows == 0], share)
    assert set(source.top(np.array([1]), 10, sp.csr_matrix(([1.0], ([0], [5])), shape=(1, 7)))
               .items.tolist()) == {0, 6}                  # excluded items are dropped
    rare = TasteSource(hist, {"colour": colour}, max_purchases=1, smoothing=0.1)
    assert set(rare.top(np.array([0]), 10).items.tolist()) == {0, 3, 4, 5, 6}  # bought <= once


def test_new_items_top_equals_ranking_their_dense_scores() -> None:
    rng = np.random.default_rng(1)
    frame = random_frame(rng, 60, 200)
    hist = history_as_of(frame, 20, 60)
    codes = {"a": rng.integers(-1, 4, 60), "b": rng.integers(0, 3, 60)}
    source = TasteSource(hist, codes, max_purchases=2, smoothing=0.05)
    users = np.arange(20)
    exclude = sp.random(20, 60, density=0.2, format="csr", random_state=0)
    got = source.top(users, 7, exclude)
    want = top_of_dense(source.scores(users), 7, exclude)  # the whole-catalogue reference
    for field in ("rows", "items", "ranks"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    assert len(got.items) > 0 and not np.isin(got.items, np.flatnonzero(np.bincount(
        frame.item_idx, minlength=60) > 2)).any()


@pytest.mark.parametrize(("source", "key"), [
    ({"kind": "repurchase", "budget": 0}, "own.budget"),
    ({"kind": "new_items", "max_purchases": 0, "smoothing": 0}, "own.smoothing"),
    ({"kind": "new_items", "max_purchases": -1, "smoothing": 0.1}, "own.max_purchases"),
    ({"kind": "new_items", "max_purchases": 0.5, "smoothing": 0.1}, "own.max_purchases")])
def test_bad_source_settings_are_refused_naming_their_key(source: dict[str, object],
                                                          key: str) -> None:
    cand = {"budget": 5, "batch_users": 10, "recall_at": [5], "sources": {"own": source},
            "features": {"popularity_windows": [7]}}
    ranker = {"params": {}, "num_boost_round": 1, "seed": 0, "threads": 1}
    with pytest.raises(ConfigError, match=rf"candidates\.sources\.{key}"):
        ranking_config(cand, ranker)
    disabled = {**cand, "sources": {"own": {**source, "enabled": False}}}
    assert ranking_config(disabled, ranker).sources == {}  # only enabled sources are checked
