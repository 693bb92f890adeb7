"""Metrics against hand-computed cases and torchmetrics' retrieval metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torchmetrics.functional.retrieval import (
    retrieval_average_precision,
    retrieval_hit_rate,
    retrieval_normalized_dcg,
    retrieval_recall,
    retrieval_reciprocal_rank,
)

from recsys.evaluation import metrics as M


def truth_of(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.concatenate([np.asarray(x, dtype=np.int64) for x in rows])
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_hand_computed_case() -> None:
    top = np.array([[3, 1, 2, 0], [0, 1, 2, 3], [4, -1, -1, -1]])
    truth = truth_of([[1, 0], [5], [4, 2, 3]], 6)
    hits = M.hit_matrix(top, truth)
    assert hits.tolist() == [[False, True, False, True], [False] * 4, [True, False, False, False]]
    n_rel = M.relevant_counts(truth)
    np.testing.assert_allclose(M.recall_at_k(hits, n_rel, 2), [0.5, 0.0, 1 / 3])
    np.testing.assert_allclose(M.recall_at_k(hits, n_rel, 4), [1.0, 0.0, 1 / 3])
    d = 1 / np.log2(np.arange(2, 6))
    np.testing.assert_allclose(M.ndcg_at_k(hits, n_rel, 4),
                               [(d[1] + d[3]) / (d[0] + d[1]), 0.0, d[0] / d[:3].sum()])
    np.testing.assert_allclose(M.hit_rate_at_k(hits, 1), [0, 0, 1])
    np.testing.assert_allclose(M.mrr_at_k(hits, 4), [0.5, 0.0, 1.0])
    # AP@4 row 0: hits at ranks 2 and 4 -> (1/2 + 2/4) / min(2, 4)
    np.testing.assert_allclose(M.map_at_k(hits, n_rel, 4), [0.5, 0.0, 1 / 3])
    means = M.ranking_metrics(top, truth, [4])
    assert means["recall@4"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert M.catalogue_coverage(top, 10) == pytest.approx(5 / 10)
    counts = np.array([3, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    expected = np.mean([-math.log2((c + 1) / 5) for c in counts[top[top >= 0]]])
    assert M.novelty(top, counts, 4) == pytest.approx(expected)


def test_stored_zeros_are_not_relevant() -> None:
    truth = sp.csr_matrix((np.array([1.0, 0.0]), (np.array([0, 0]), np.array([2, 3]))),
                          shape=(1, 5))
    assert truth.nnz == 2
    top = np.array([[3, 2]])
    assert M.hit_matrix(top, truth).tolist() == [[False, True]]
    assert M.ranking_metrics(top, truth, [2])["recall@2"] == 1.0


def test_users_without_relevant_items_are_not_averaged() -> None:
    top = np.array([[0, 1], [0, 1]])
    truth = truth_of([[0], []], 3)
    assert M.ranking_metrics(top, truth, [2])["hitrate@2"] == 1.0
    assert M.ranking_metrics(top, truth_of([[], []], 3), [2]) == {}


def test_k_beyond_ranked_list_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        M.per_user_metrics(np.zeros((1, 3), int), truth_of([[0]], 5), [5])


@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_matches_torchmetrics_on_random_rankings(k: int) -> None:
    rng = np.random.default_rng(k)
    n_users, n_items = 40, 30
    scores = rng.random((n_users, n_items)) + 0.01  # torchmetrics ignores non-positive scores
    truth_dense = rng.random((n_users, n_items)) < 0.1
    truth_dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    top = np.argsort(-scores, axis=1)[:, :30]
    ours = M.per_user_metrics(top, sp.csr_matrix(truth_dense), [k])
    for u in range(n_users):
        p, t = torch.tensor(scores[u]), torch.tensor(truth_dense[u])
        assert ours[f"recall@{k}"][u] == pytest.approx(float(retrieval_recall(p, t, top_k=k)))
        assert ours[f"ndcg@{k}"][u] == pytest.approx(
            float(retrieval_normalized_dcg(p, t, top_k=k)), abs=1e-6)
        assert ours[f"hitrate@{k}"][u] == float(retrieval_hit_rate(p, t, top_k=k))
        assert ours[f"mrr@{k}"][u] == pytest.approx(
            float(retrieval_reciprocal_rank(p, t, top_k=k)))
        # torchmetrics' AP@k divides by the hits found; ours by min(#relevant, k) (H&M MAP@12):
        # they agree whenever every relevant item (up to k) is retrieved.
        n_hits = int(np.isin(top[u, :k], np.flatnonzero(truth_dense[u])).sum())
        tm_ap = float(retrieval_average_precision(p, t, top_k=k))
        assert ours[f"map@{k}"][u] == pytest.approx(
            tm_ap * n_hits / min(int(truth_dense[u].sum()), k), abs=1e-6)
