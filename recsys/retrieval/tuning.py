"""ANN quality: recall@K of an index against exact search, and search-parameter tuning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.topk import exact_top_k


@dataclass(frozen=True)
class RecallReport:
    """Measured ANN recall@k of an index with its search parameters."""

    k: int
    recall: float
    n_queries: int
    params: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "recall": self.recall, "n_queries": self.n_queries,
                "params": dict(self.params)}


@dataclass(frozen=True)
class ExactTruth:
    """Exact top-k of some queries: ids and the k-th best score (the tie-aware threshold)."""

    queries: np.ndarray
    items: np.ndarray
    item_ids: np.ndarray
    ids: np.ndarray
    kth: np.ndarray
    metric: str

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    def recall(self, found: np.ndarray) -> float:
        """Share of found ids scoring at least the exact k-th score (ties count as hits)."""
        order = np.argsort(self.item_ids)
        pos = np.searchsorted(self.item_ids, found, sorter=order)
        rows = order[np.minimum(pos, len(order) - 1)]
        valid = (found >= 0) & (self.item_ids[rows] == found)
        vecs = self.items[rows]
        if self.metric == "l2":
            scores = -((vecs - self.queries[:, None, :]) ** 2).sum(-1)
        else:
            scores = np.einsum("nkd,nd->nk", vecs, self.queries)
        tol = 1e-4 * (np.abs(self.kth) + 1.0)
        hits = valid & (scores >= (self.kth - tol)[:, None])
        return float(hits.sum() / self.ids.size) if self.ids.size else 0.0


def exact_truth(index: ItemIndex, items: np.ndarray, item_ids: np.ndarray, queries: np.ndarray,
                k: int) -> ExactTruth:
    """Exact top-``k`` of ``queries`` over prepared ``items`` (rows aligned with ``item_ids``)."""
    items = np.ascontiguousarray(items, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores, rows = exact_top_k(queries, items, k, metric=index.metric)
    ids = np.asarray(item_ids, dtype=np.int64)[rows]
    return ExactTruth(queries, items, np.asarray(item_ids, np.int64), ids, scores[:, -1],
                      index.metric)


def measure(index: ItemIndex, truth: ExactTruth) -> RecallReport:
    """Tie-aware ANN recall of ``index`` at ``truth.k`` with its current parameters."""
    _, found = index.search(truth.queries, truth.k)
    return RecallReport(truth.k, truth.recall(found), len(truth.queries), dict(index.params))


def tune(
    index: ItemIndex,
    truth: ExactTruth,
    param: str,
    values: Sequence[float],
    target: float,
) -> RecallReport:
    """Set ``param`` to the first of ``values`` (ascending cost) whose recall reaches ``target``;
    the last value when none does. Returns the recall at the chosen setting."""
    report = measure(index, truth)
    for value in values:
        index.set_params({param: value})
        report = measure(index, truth)
        if report.recall >= target:
            break
    return report


def sample_rows(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` rows of ``x`` drawn without replacement."""
    if len(x) <= n:
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def calibrate(index: ItemIndex, items: np.ndarray, queries: np.ndarray, spec: IndexSpec
              ) -> RecallReport:
    """ANN recall of ``index`` against exact search over prepared ``items``, on a sample of
    prepared ``queries``; the spec's search parameter is tuned to its target first when it
    names one."""
    sample = sample_rows(queries, spec.recall_queries, spec.seed)
    truth = exact_truth(index, items, np.arange(len(items)), sample,
                        min(spec.recall_k, len(items)))
    if spec.tuned:
        assert spec.tune_param is not None and spec.target_recall is not None
        return tune(index, truth, spec.tune_param, spec.tune_values, float(spec.target_recall))
    return measure(index, truth)
