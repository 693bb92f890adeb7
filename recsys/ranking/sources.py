"""Candidate sources, one interface: fitted on the :class:`History` as of a cut-off, each scores
items for a batch of users and keeps its ``budget`` best (:meth:`CandidateSource.top`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.arrays import member
from recsys.errors import ModelError
from recsys.ranking.candidates import (
    Candidates,
    check_budget,
    pair_keys,
    rank_pairs,
    top_of_dense,
    top_of_sparse,
)
from recsys.ranking.history import History
from recsys.retrieval.embeddings import EmbeddingModel
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.similarity import metric_for, prepare


class CandidateSource(ABC):
    """Scores ``[len(users), n_items]``: sparse (only proposed items stored) or dense."""

    @abstractmethod
    def scores(self, users: np.ndarray) -> sp.csr_matrix | np.ndarray:
        """Scores of every proposed item for ``users`` (higher is better)."""

    def top(self, users: np.ndarray, budget: int, exclude: sp.csr_matrix | None = None
            ) -> Candidates:
        """The ``budget`` best items of each user (rows of ``exclude`` = ``users``)."""
        budget = check_budget(budget)
        s = self.scores(np.asarray(users, np.int64))
        return top_of_sparse(s, budget, exclude) if sp.issparse(s) else \
            top_of_dense(s, budget, exclude)


class RepurchaseSource(CandidateSource):
    """The user's own purchases, weighted by recency (half-life in days)."""

    def __init__(self, history: History, half_life_days: float | None) -> None:
        self.weights = history.decayed(half_life_days)

    def scores(self, users: np.ndarray) -> sp.csr_matrix:
        return self.weights[users]


def cosine_neighbours(binary: sp.csr_matrix, neighbours: int, shrink: float,
                      per_candidate: bool = False) -> sp.csr_matrix:
    """Item-item cosine similarity ``x_i.x_j / (|x_i||x_j| + shrink)`` over users, self excluded,
    the ``neighbours`` most similar items kept per row ``i`` (a bought item), or per column ``j``
    (a candidate: RecBole's ItemKNN) when ``per_candidate``."""
    x = sp.csr_matrix(binary > 0, dtype=np.float64)
    gram = (x.T @ x).tocoo()
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    off = gram.row != gram.col
    rows, cols = gram.row[off], gram.col[off]
    sims = gram.data[off] / (norms[rows] * norms[cols] + shrink)
    sim = sp.csr_matrix((sims, (rows, cols)), shape=gram.shape)
    best = top_of_sparse(sim.T.tocsr() if per_candidate else sim, neighbours)
    kept = sp.csr_matrix((best.scores, (best.rows, best.items)), shape=gram.shape)
    return kept.T.tocsr() if per_candidate else kept


class CoPurchaseSource(CandidateSource):
    """Items bought by the same users as the user's (recency-weighted) purchases: ItemKNN."""

    def __init__(self, history: History, neighbours: int, shrink: float,
                 half_life_days: float | None, per_candidate: bool = False) -> None:
        self.weights = history.decayed(half_life_days)
        self.similar = cosine_neighbours(history.counts, check_budget(neighbours, "neighbours"),
                                         float(shrink), per_candidate)

    def scores(self, users: np.ndarray) -> sp.csr_matrix:
        return (self.weights[users] @ self.similar).tocsr()


def group_matrix(groups: np.ndarray) -> sp.csr_matrix:
    """One-hot ``[n_items, n_groups]`` of item group codes (negative = no group)."""
    groups = np.asarray(groups, np.int64)
    has = np.flatnonzero(groups >= 0)
    n_groups = int(groups.max(initial=-1)) + 1
    return sp.csr_matrix((np.ones(len(has)), (has, groups[has])), shape=(len(groups), n_groups))


def item_popularity(history: History, window_days: float | None) -> np.ndarray:
    """Purchases per item within the window, ties by all-time purchases, scaled into [0, 1)."""
    recent = np.bincount(history.recent(window_days)["item_idx"].to_numpy(np.int64),
                         minlength=history.n_items).astype(np.float64)
    total = np.bincount(history.frame["item_idx"].to_numpy(np.int64),
                        minlength=history.n_items).astype(np.float64)
    score = recent + total / (total.max(initial=0.0) + 1.0)
    return score / (score.max(initial=0.0) + 1.0)


class SiblingSource(CandidateSource):
    """Items sharing a group (an item column's value) with the user's purchases, by the
    group's recency weight, then by the item's recent popularity."""

    def __init__(self, history: History, groups: np.ndarray, half_life_days: float | None,
                 window_days: float | None) -> None:
        self.one_hot = group_matrix(groups)
        self.user_groups = (history.decayed(half_life_days) @ self.one_hot).tocsr()
        self.popularity = item_popularity(history, window_days)

    def scores(self, users: np.ndarray) -> sp.csr_matrix:
        out = (self.user_groups[users] @ self.one_hot.T).tocsr()
        out.data *= 1.0 + self.popularity[out.indices]
        return out


class PopularitySource(CandidateSource):
    """Recent popularity within the user's segment (``segments``: a code per user, negative =
    none), the global one breaking ties and serving users without a segment."""

    def __init__(self, history: History, window_days: float | None,
                 segments: np.ndarray | None = None) -> None:
        self.global_ = item_popularity(history, window_days)
        self.segments = None if segments is None else np.asarray(segments, np.int64)
        self.by_segment = None
        if self.segments is not None:
            recent = history.recent(window_days)
            seg = self.segments[recent["user_idx"].to_numpy(np.int64)]
            ok = seg >= 0
            n_seg = int(self.segments.max(initial=-1)) + 1
            counts = np.zeros((max(n_seg, 1), history.n_items))
            np.add.at(counts, (seg[ok], recent["item_idx"].to_numpy(np.int64)[ok]), 1.0)
            self.by_segment = counts

    def _segment_of(self, users: np.ndarray) -> np.ndarray:
        """Row of :meth:`_table` per user: its segment, or the last row (global) without one."""
        if self.by_segment is None or self.segments is None:
            return np.zeros(len(users), np.int64)
        seg = self.segments[users]
        return np.where(seg >= 0, seg, len(self.by_segment))

    def _table(self) -> np.ndarray:
        """Scores per segment, then the global row."""
        if self.by_segment is None:
            return self.global_[None, :]
        return np.vstack([self.by_segment + self.global_, self.global_])

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self._table()[self._segment_of(users)]

    def top(self, users: np.ndarray, budget: int, exclude: sp.csr_matrix | None = None
            ) -> Candidates:
        """One ranking per segment, cut per user after its excluded items are dropped."""
        budget = check_budget(budget)
        users = np.asarray(users, np.int64)
        spare = int(np.diff(exclude.indptr).max(initial=0)) if exclude is not None else 0
        best = top_of_dense(self._table(), budget + spare)
        width = np.bincount(best.rows, minlength=len(self._table()))
        seg = self._segment_of(users)
        start = np.concatenate([[0], np.cumsum(width)])
        rows = np.repeat(np.arange(len(users)), width[seg])
        pos = np.arange(len(rows)) - np.repeat(np.cumsum(width[seg]) - width[seg], width[seg])
        src = start[seg][rows] + pos
        items, scores = best.items[src], best.scores[src]
        if spare:
            ex = sp.coo_matrix(exclude)
            n = self.global_.shape[0]
            keep = ~member(pair_keys(ex.row, ex.col, n), pair_keys(rows, items, n))
            rows, items, scores = rows[keep], items[keep], scores[keep]
        return rank_pairs(rows, items, scores, budget)


class TasteSource(CandidateSource):
    """Items scored by the user's taste for their attribute values: the sum over ``codes`` (a
    value code per item and column, negative = none) of ``log(share + smoothing)``, where share
    is the user's share of purchases with the item's value, or with ``events`` of the history's
    weighted events (views, clicks...: :attr:`History.events`); plus ``popularity_weight`` x
    log(1 + the item's purchases within ``window_days``). ``max_purchases`` keeps the items with
    at most that many purchases before the cut-off (new arrivals, items nobody bought yet, which
    no behavioural source proposes: kind ``new_items``); None keeps every item (kind ``taste``)."""

    def __init__(self, history: History, codes: dict[str, np.ndarray],
                 max_purchases: int | None, smoothing: float, *, events: bool = False,
                 popularity_weight: float = 0.0, window_days: float | None = None) -> None:
        bought = np.bincount(history.frame["item_idx"].to_numpy(np.int64),
                             minlength=history.n_items)
        self.items = np.arange(history.n_items) if max_purchases is None else \
            np.flatnonzero(bought <= max_purchases)  # sorted: ties keep the item order
        if events:
            if history.events is None:
                raise ModelError("a taste source reads the history's events: set "
                                 "candidates.features.events")
            counts = sp.csr_matrix((history.events["weight"].to_numpy(np.float64),
                                    (history.events["user_idx"].to_numpy(np.int64),
                                     history.events["item_idx"].to_numpy(np.int64))),
                                   shape=(history.n_users, history.n_items))
        else:
            counts = history.counts
        total = np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1e-12)
        self.shares = [(sp.csr_matrix(sp.diags(1.0 / total) @ (counts @ group_matrix(code))),
                        np.asarray(code, np.int64)[self.items]) for code in codes.values()]
        recent = np.bincount(history.recent(window_days)["item_idx"].to_numpy(np.int64),
                             minlength=history.n_items)
        self.bias = (float(popularity_weight) * np.log1p(recent[self.items])).astype(np.float32)
        self.n_items = history.n_items
        self.smoothing = float(smoothing)

    def _block(self, users: np.ndarray) -> np.ndarray:
        """Scores ``[len(users), len(self.items)]`` of the source's own items only."""
        out = np.broadcast_to(self.bias, (len(users), len(self.items))).copy()
        for taste, code in self.shares:
            share = np.where(code >= 0, taste[users].toarray()[:, np.maximum(code, 0)], 0.0)
            out += np.log(share + self.smoothing).astype(np.float32)
        return out

    def scores(self, users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), self.n_items), -np.inf, dtype=np.float32)
        out[:, self.items] = self._block(users)
        return out  # -inf (never proposed) for the items bought more often

    def top(self, users: np.ndarray, budget: int, exclude: sp.csr_matrix | None = None
            ) -> Candidates:
        """As :meth:`CandidateSource.top`, ranking only the source's own items (not a dense
        block over the whole catalogue)."""
        budget = check_budget(budget)
        users = np.asarray(users, np.int64)
        sub = None
        if exclude is not None:
            column = np.full(self.n_items, -1, np.int64)
            column[self.items] = np.arange(len(self.items))
            ex = sp.coo_matrix(exclude)
            keep = column[ex.col] >= 0
            sub = sp.csr_matrix((ex.data[keep], (ex.row[keep], column[ex.col[keep]])),
                                shape=(len(users), len(self.items)))
        got = top_of_dense(self._block(users), budget, sub)
        return Candidates(got.rows, self.items[got.items], got.scores, got.ranks)


@dataclass(frozen=True)
class TwoTower:
    """A two-tower model (user vectors as of one history) and the FAISS index of its items."""

    model: EmbeddingModel
    index: ItemIndex


class EmbeddingSource(CandidateSource):
    """Nearest items to the user's vector (a two-tower's user tower), searched through a FAISS
    item index whose ids are item indices: the one exported with the model's serving bundle,
    or one built from the model's item vectors (:meth:`recsys.retrieval.index.ItemIndex.build`)."""

    def __init__(self, model: EmbeddingModel, index: ItemIndex, batch_size: int) -> None:
        self.model = model
        self.metric = metric_for(model.similarity)
        if index.metric != self.metric:
            raise ModelError(f"the two-tower index searches by {index.metric!r}, the model's "
                             f"{model.similarity!r} similarity needs {self.metric!r}")
        self.index = index
        self.batch_size = batch_size

    def _queries(self, users: np.ndarray) -> np.ndarray:
        vectors = np.asarray(self.model.user_embeddings(users), np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.index.dim:
            raise ModelError(f"user vectors {vectors.shape} do not match the index dimension "
                             f"{self.index.dim}")
        return prepare(vectors, self.model.similarity)

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Exact scores against the model's item vectors (a reference for the index search)."""
        items = prepare(np.asarray(self.model.item_embeddings(self.batch_size), np.float32),
                        self.model.similarity)
        return np.asarray(self._queries(users) @ items.T)

    def top(self, users: np.ndarray, budget: int, exclude: sp.csr_matrix | None = None
            ) -> Candidates:
        budget = min(check_budget(budget), self.index.ntotal)
        vals, ids = self.index.search(self._queries(np.asarray(users, np.int64)), budget,
                                      excluded=exclude, batch_size=self.batch_size)
        ok = ids >= 0
        rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
        ranks = np.broadcast_to(np.arange(ids.shape[1])[None, :], ids.shape)
        return Candidates(rows[ok].astype(np.int64), ids[ok].astype(np.int64),
                          vals[ok].astype(np.float64), ranks[ok].astype(np.int64))
