"""Generic rankers: dense scores, embedding matrices (exact or through a FAISS index), blends."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ModelError
from recsys.evaluation.protocols import Ranker
from recsys.retrieval import tuning
from recsys.retrieval.index import ItemIndex, valid_first
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.similarity import metric_for, prepare
from recsys.retrieval.topk import (
    EMPTY,
    check_k,
    chunk_rows,
    exact_top_k,
    exclusion_rows,
    mask_scores,
    select_top_k,
)


class ScoreRanker(ABC):
    """A method that scores every item for a batch of users; ranking is shared."""

    batch_size: int = 1024

    def __init__(self, n_items: int) -> None:
        self._n_items = n_items

    @property
    def n_items(self) -> int:
        return self._n_items

    @abstractmethod
    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        """Float32 scores ``[len(user_idx), n_items]`` (higher is better; -inf = never)."""

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        k = check_k(k, self.n_items)
        user_idx = np.asarray(user_idx, dtype=np.int64)
        out = np.empty((len(user_idx), k), dtype=np.int64)
        excluded = exclusion_rows(exclude, user_idx)
        chunk = chunk_rows(self.batch_size, self.n_items, len(user_idx))
        with torch.inference_mode():
            buffer = torch.empty((chunk, self.n_items), dtype=torch.float32)
            for s in range(0, len(user_idx), chunk):
                rows = user_idx[s : s + chunk]
                scores = buffer[: len(rows)].copy_(self.scores(rows))
                mask_scores(scores, excluded, s)
                out[s : s + len(rows)] = select_top_k(scores, k)[1]
        return out


class EmbeddingRanker:
    """Exact full ranking by the similarity of user and item vectors.

    ``user_vectors`` holds the vectors of ``user_idx`` (all users ``0..n-1`` when omitted).
    """

    def __init__(
        self,
        user_vectors: np.ndarray,
        item_vectors: np.ndarray,
        similarity: str,
        user_idx: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> None:
        self.similarity = similarity
        self.metric = metric_for(similarity)
        self.users = prepare(user_vectors, similarity)
        self.items = prepare(item_vectors, similarity)
        if self.users.shape[1] != self.items.shape[1]:
            raise ModelError(
                f"user vectors have dimension {self.users.shape[1]}, items {self.items.shape[1]}"
            )
        ids = np.arange(len(self.users)) if user_idx is None else np.asarray(user_idx, np.int64)
        self._row = np.full(int(ids.max(initial=-1)) + 1, -1, dtype=np.int64)
        self._row[ids] = np.arange(len(ids))
        self.batch_size = batch_size

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    def user_rows(self, user_idx: np.ndarray) -> np.ndarray:
        """Rows of ``user_vectors`` for ``user_idx``; a ModelError for users without a vector."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        rows = np.full(len(user_idx), -1, dtype=np.int64)
        known = user_idx < len(self._row)
        rows[known] = self._row[user_idx[known]]
        if (rows < 0).any():
            missing = user_idx[rows < 0][:5].tolist()
            raise ModelError(f"no embedding for user_idx {missing}")
        return rows

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        queries = self.users[self.user_rows(user_idx)]
        excluded = exclusion_rows(exclude, user_idx)
        return exact_top_k(queries, self.items, k, excluded=excluded,
                           batch_size=self.batch_size, metric=self.metric)[1]


class IndexRanker:
    """Ranking through a FAISS :class:`ItemIndex` built over an :class:`EmbeddingRanker`."""

    def __init__(self, base: EmbeddingRanker, index: ItemIndex, batch_size: int = 4096) -> None:
        self.base = base
        self.index = index
        self.batch_size = batch_size

    @classmethod
    def build(cls, base: EmbeddingRanker, spec: IndexSpec) -> IndexRanker:
        """Index the item vectors of ``base`` (already prepared for its similarity); search
        parameters are tuned on a sample of its users as at export when the spec says so."""
        index = ItemIndex.build(base.items, spec, base.similarity)
        if spec.tuned:  # an untuned index needs no exact baseline here (export measures it)
            tuning.calibrate(index, base.items, base.users, spec)
        return cls(base, index)

    @property
    def n_items(self) -> int:
        return self.base.n_items

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        user_idx = np.asarray(user_idx, dtype=np.int64)
        queries = self.base.users[self.base.user_rows(user_idx)]
        return self.index.search(queries, k, excluded=exclusion_rows(exclude, user_idx),
                                 batch_size=self.batch_size)[1]


class HistoryFirstRanker:
    """The user's own history first (by ``history`` weight), then ``base``'s ranking.

    At most ``max_history`` history items are placed first (all of them when None).
    """

    def __init__(self, history: sp.csr_matrix, base: Ranker, max_history: int | None = None):
        self.history = history.tocsr()
        self.base = base
        self.max_history = max_history

    @property
    def n_items(self) -> int:
        return self.base.n_items

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        k = check_k(k, self.n_items)
        user_idx = np.asarray(user_idx, dtype=np.int64)
        own = self.history[user_idx]
        if exclude is not None:
            own = own - own.multiply(exclude[user_idx] > 0)
            own.eliminate_zeros()
        first = _top_of_sparse(own, min(k, self.max_history or k))
        placed = sp.csr_matrix(
            (np.ones(int((first >= 0).sum()), np.float32),
             (np.repeat(np.arange(len(user_idx)), (first >= 0).sum(1)), first[first >= 0])),
            shape=(len(user_idx), self.n_items),
        )
        skip = _scatter_rows(placed, user_idx, self.history.shape[0])
        if exclude is not None:
            skip = skip + exclude
        rest = self.base.top_k(user_idx, k, skip)
        merged = np.concatenate([first, rest], axis=1)
        return np.take_along_axis(merged, valid_first(merged, k), axis=1)


def rank_stored(weights: sp.csr_matrix, tie: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored entries of each row ranked by value, ties by ``tie[col]`` (higher first), then
    by column: ``(rows, cols, rank)``, sorted by row then rank."""
    coo = weights.tocoo()
    tie_key = -np.asarray(tie)[coo.col] if tie is not None else np.zeros(coo.nnz)
    order = np.lexsort((coo.col, tie_key, -coo.data, coo.row))
    rows, cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    starts = np.searchsorted(rows, np.arange(weights.shape[0]))
    return rows, cols, np.arange(len(rows)) - starts[rows]


def _top_of_sparse(weights: sp.csr_matrix, k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` largest stored values (``EMPTY`` padded)."""
    out = np.full((weights.shape[0], k), EMPTY, dtype=np.int64)
    rows, cols, rank = rank_stored(weights)
    keep = rank < k
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def _scatter_rows(block: sp.csr_matrix, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """A ``[n_rows, n_cols]`` matrix holding ``block``'s rows at positions ``rows``."""
    coo = block.tocoo()
    return sp.csr_matrix((coo.data, (rows[coo.row], coo.col)), shape=(n_rows, block.shape[1]))
