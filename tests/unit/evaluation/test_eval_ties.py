"""One tie rule and one metric implementation: every ranking path (score rankers, exact
embedding ranking, the FAISS index, training's validation metric) equals a plain per-user
Python loop that sorts by (-score, item_idx) and skips excluded items, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys.evaluation.eval_data import EvalData
from recsys.evaluation.evaluator import EvalSettings, evaluate
from recsys.evaluation.rankers import EmbeddingRanker, IndexRanker, ScoreRanker
from recsys.retrieval.index_spec import load_spec
from recsys.ties import order_keys, top_k
from recsys.training.ranking import RankingMetrics

KS = (1, 5, 10)
N_USERS, N_ITEMS = 40, 60


def reference(scores: np.ndarray, history: sp.csr_matrix, truth: sp.csr_matrix,
              users: np.ndarray, k: int) -> dict[str, float]:
    """Textbook metrics, one user at a time, ranked by (-score, item index)."""
    totals = {"recall": 0.0, "ndcg": 0.0, "hitrate": 0.0, "mrr": 0.0, "map": 0.0}
    for u in users:
        seen = set(history[u].indices.tolist())
        relevant = set(truth[u].indices.tolist())
        ranked = sorted((i for i in range(scores.shape[1]) if i not in seen),
                        key=lambda i: (-float(scores[u, i]), i))[:k]
        hits = [i in relevant for i in ranked]
        totals["recall"] += sum(hits) / len(relevant)
        dcg = sum(1.0 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        totals["ndcg"] += dcg / sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        totals["hitrate"] += float(any(hits))
        totals["mrr"] += next((1.0 / (r + 1) for r, h in enumerate(hits) if h), 0.0)
        found, ap = 0, 0.0
        for r, h in enumerate(hits):
            if h:
                found += 1
                ap += found / (r + 1)
        totals["map"] += ap / min(len(relevant), k)
    return {f"{name}@{k}": value / len(users) for name, value in totals.items()}


class FixedScores(ScoreRanker):
    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(scores.shape[1])
        self.matrix = torch.from_numpy(scores.astype(np.float32))

    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        return self.matrix[torch.from_numpy(user_idx)]


@pytest.fixture(scope="module")
def world() -> tuple[np.ndarray, np.ndarray, EvalData]:
    """Integer user / item vectors (exact float32 dot products, many equal scores), a history
    to exclude and a truth that sometimes repeats a history item."""
    rng = np.random.default_rng(7)
    users = rng.integers(-1, 2, size=(N_USERS, 3)).astype(np.float32)
    items = rng.integers(0, 2, size=(N_ITEMS, 3)).astype(np.float32)
    history = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < 0.15).astype(np.float32))
    dense = (rng.random((N_USERS, N_ITEMS)) < 0.1).astype(np.float32)
    dense[:3] = 0  # users without a target are not evaluated
    truth = sp.csr_matrix(dense)
    evaluated = np.flatnonzero(np.diff(truth.indptr) > 0)
    data = EvalData(split="test", history_splits=("train", "val"), n_users=N_USERS,
                    n_items=N_ITEMS, history=history, history_frame=pd.DataFrame(),
                    truth=truth, users=evaluated,
                    user_table=pd.DataFrame({"user_idx": np.arange(N_USERS)}))
    return users, items, data


def test_tie_keys_order_scores_then_lower_index() -> None:
    scores = torch.tensor([[0.0, -0.0, 1.0, float("nan"), -2.5, 1.0, float("-inf"), -2.5]])
    keys = order_keys(scores)[0].tolist()
    assert len(set(keys)) == 8
    order = sorted(range(8), key=lambda i: -keys[i])
    assert order == [2, 5, 0, 1, 4, 7, 3, 6]  # NaN ranks like -inf, before it by index
    assert top_k(scores, 3)[1][0].tolist() == [2, 5, 0]


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("path", ["scores", "embedding", "index"])
def test_every_ranking_path_equals_the_reference_loop(
    world: tuple[np.ndarray, np.ndarray, EvalData], path: str, exclude: bool
) -> None:
    users, items, data = world
    scores = users @ items.T
    assert len(np.unique(scores)) < 10  # ties everywhere
    ranker = {"scores": lambda: FixedScores(scores),
              "embedding": lambda: EmbeddingRanker(users, items, "dot", batch_size=7),
              "index": lambda: IndexRanker.build(EmbeddingRanker(users, items, "dot"),
                                                 load_spec("flat"))}[path]()
    settings = EvalSettings(ks=KS, main_k=10, exclude_purchased=exclude, segments=(),
                            min_segment_users=1)
    got = evaluate({"m": ranker}, data, settings).methods["m"].overall
    excluded = data.history if exclude else sp.csr_matrix(data.history.shape, dtype=np.float32)
    for k in KS:
        for name, value in reference(scores, excluded, data.truth, data.users, k).items():
            assert got[name] == pytest.approx(value, abs=1e-9), (path, name)


@pytest.mark.parametrize("exclude", [True, False])
def test_training_validation_metric_equals_the_reference_loop(
    world: tuple[np.ndarray, np.ndarray, EvalData], exclude: bool
) -> None:
    users, items, data = world
    excluded = data.history if exclude else sp.csr_matrix(data.history.shape, dtype=np.float32)
    scores = torch.from_numpy(users @ items.T)
    seen = torch.from_numpy(excluded.toarray() > 0)
    targets = torch.from_numpy(data.truth.toarray() > 0)
    metric = RankingMetrics(k=10)
    for start in range(0, N_USERS, 16):  # batches, users without targets included
        rows = slice(start, start + 16)
        metric.update(scores[rows].masked_fill(seen[rows], float("-inf")), targets[rows])
    got = metric.compute()
    want = reference(users @ items.T, excluded, data.truth, data.users, 10)
    assert got["users"].item() == len(data.users)
    for name in ("recall", "ndcg", "hitrate", "mrr", "map"):
        assert got[name].item() == pytest.approx(want[f"{name}@10"], abs=1e-9)
