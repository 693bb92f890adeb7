"""Candidate lists: the best ``budget`` items per user of one source, their union over sources
(each source's score and rank kept) and the share of held-out purchases they cover."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsys.arrays import member
from recsys.errors import ConfigError
from recsys.ties import top_k


@dataclass(frozen=True)
class Candidates:
    """One source's candidates: ``rows`` (positions in the ranked users), ``items``, ``scores``
    and 0-based ``ranks``, sorted by row then rank."""

    rows: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray

    def head(self, n: int) -> Candidates:
        """The best ``n`` of each row."""
        keep = self.ranks < n
        return Candidates(self.rows[keep], self.items[keep], self.scores[keep], self.ranks[keep])


@dataclass(frozen=True)
class CandidateSet:
    """The union of several sources' candidates per user: pairs sorted by (row, item), and per
    source its score and rank on each pair (NaN where the source did not propose it)."""

    users: np.ndarray
    n_items: int
    rows: np.ndarray
    items: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def keys(self) -> np.ndarray:
        return pair_keys(self.rows, self.items, self.n_items)


def check_budget(budget: int, where: str = "candidates.budget") -> int:
    """``budget`` as a positive int; a ConfigError naming ``where`` otherwise."""
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget <= 0:
        raise ConfigError(f"{where} must be a positive integer, got {budget!r}", column=where)
    return int(budget)


def pair_keys(rows: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 per (row, item)."""
    return np.asarray(rows, np.int64) * np.int64(n_items) + np.asarray(items, np.int64)


def top_of_sparse(scores: sp.csr_matrix, budget: int,
                  exclude: sp.csr_matrix | None = None) -> Candidates:
    """The ``budget`` best stored entries of each row (ties: lower item first), ``exclude``'s
    non-zeros (same shape) dropped; stored values must be finite."""
    coo = sp.coo_matrix(scores)
    rows, cols, vals = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    if exclude is not None and exclude.nnz:
        ex = sp.coo_matrix(exclude)
        keep = ~member(pair_keys(ex.row, ex.col, scores.shape[1]),
                       pair_keys(rows, cols, scores.shape[1]))
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    return rank_pairs(rows, cols, vals, budget)


def rank_pairs(rows: np.ndarray, items: np.ndarray, scores: np.ndarray, budget: int
               ) -> Candidates:
    """The ``budget`` best-scored (row, item) pairs of each row, ties by the lower item."""
    rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
    scores = np.asarray(scores, np.float64)
    order = np.lexsort((items, -scores, rows))
    rows, items, scores = rows[order], items[order], scores[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < budget
    return Candidates(rows[keep], items[keep], scores[keep], rank[keep])


def top_of_dense(scores: np.ndarray | torch.Tensor, budget: int,
                 exclude: sp.csr_matrix | None = None) -> Candidates:
    """The ``budget`` best finite scores of each row of a dense ``[n_rows, n_items]`` block under
    the package's tie rule, ``exclude``'s non-zeros dropped."""
    block = torch.as_tensor(np.asarray(scores, dtype=np.float32)).clone()
    if exclude is not None and exclude.nnz:
        ex = sp.coo_matrix(exclude)
        block[torch.from_numpy(ex.row.astype(np.int64)), torch.from_numpy(ex.col.astype(np.int64))] \
            = float("-inf")
    k = min(budget, block.shape[1])
    values, idx = (t.numpy() for t in top_k(block, k))
    ok = np.isfinite(values)
    rows = np.broadcast_to(np.arange(block.shape[0])[:, None], values.shape)
    ranks = np.broadcast_to(np.arange(k)[None, :], values.shape)
    return Candidates(rows[ok].astype(np.int64), idx[ok].astype(np.int64),
                      values[ok].astype(np.float64), ranks[ok].astype(np.int64))


def merge(users: np.ndarray, n_items: int, lists: Mapping[str, Candidates]) -> CandidateSet:
    """Deduplicated union of ``lists`` per user, keeping each source's score and rank."""
    keys = {name: pair_keys(c.rows, c.items, n_items) for name, c in lists.items()}
    union = np.unique(np.concatenate([np.empty(0, np.int64), *keys.values()]))
    scores, ranks = {}, {}
    for name, cand in lists.items():
        pos = np.searchsorted(union, keys[name])
        scores[name] = np.full(len(union), np.nan)
        ranks[name] = np.full(len(union), np.nan)
        scores[name][pos] = cand.scores
        ranks[name][pos] = cand.ranks
    return CandidateSet(np.asarray(users, np.int64), n_items, union // n_items, union % n_items,
                        scores, ranks)


def candidate_recall(keys: np.ndarray, truth: sp.csr_matrix) -> float:
    """Share of ``truth``'s positives (rows = ranked users) among the (row, item) ``keys``."""
    pos = sp.csr_matrix(truth, copy=True)
    pos.eliminate_zeros()
    pos = pos.tocoo()
    if pos.nnz == 0:
        return 0.0
    return float(member(keys, pair_keys(pos.row, pos.col, truth.shape[1])).mean())


def recall_table(lists: Mapping[str, Candidates], truth: sp.csr_matrix, at: list[int]
                 ) -> dict[str, dict[str, float]]:
    """Candidate recall of each source and of their union when each keeps its best ``n``, for
    every ``n`` in ``at``: ``{"<source>" | "union": {"@<n>": recall}}``."""
    n_items = truth.shape[1]
    out: dict[str, dict[str, float]] = {name: {} for name in [*lists, "union"]}
    for n in at:
        heads = {name: c.head(int(n)) for name, c in lists.items()}
        keys = {name: pair_keys(c.rows, c.items, n_items) for name, c in heads.items()}
        for name, k in keys.items():
            out[name][f"@{n}"] = candidate_recall(k, truth)
        out["union"][f"@{n}"] = candidate_recall(
            np.unique(np.concatenate([np.empty(0, np.int64), *keys.values()])), truth)
    return out
