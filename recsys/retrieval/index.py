"""FAISS item index: built from a factory string, ids mapped to item indices, tunable search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faiss
import numpy as np
import scipy.sparse as sp

from recsys.arrays import member
from recsys.errors import ConfigError, ModelError
from recsys.retrieval.faiss_device import parameter_space, place_index, to_cpu
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.similarity import check_metric, faiss_metric, metric_name, prepare
from recsys.retrieval.topk import EMPTY, check_k
from recsys.ties import sort_rows


class ItemIndex:
    """A FAISS index over item vectors whose ids are the items' original indices."""

    def __init__(self, index: faiss.Index, factory: str, params: Mapping[str, float],
                 device: str = "cpu") -> None:
        self.index = index
        self.factory = factory
        self.device = device  # where it searches: "cpu" or "cuda" (see faiss_device)
        self.params: dict[str, float] = {}
        self.set_params(params)

    @property
    def metric(self) -> str:
        """``"ip"`` or ``"l2"``."""
        return metric_name(self.index.metric_type)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        spec: IndexSpec,
        similarity: str,
        ids: np.ndarray | None = None,
    ) -> ItemIndex:
        """Index ``vectors`` (rows = items, ids default to ``0..n-1``) for a ``similarity`` model.

        The metric is derived from ``similarity`` (cosine vectors are normalised); an index whose
        configured metric ranks differently is refused. Indexes that need training are trained on
        a random sample of at most ``spec.train_size`` vectors.
        """
        metric = check_metric(spec.metric, similarity)
        x = prepare(vectors, similarity)
        n, d = x.shape
        if n == 0:
            raise ModelError("cannot build an index over an empty catalogue")
        ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if ids.shape != (n,):
            raise ModelError(f"got {ids.shape[0]} ids for {n} vectors")
        factory = spec.resolve_factory(n, d)
        try:
            index = faiss.index_factory(d, f"IDMap2,{factory}", faiss_metric(metric))
        except RuntimeError as err:
            raise ConfigError(f"index.factory {factory!r}: {_first_line(err)}") from None
        _apply_build_params(index, spec.build_params)
        if not index.is_trained:
            rng = np.random.default_rng(spec.seed)
            take = min(n, spec.train_size)
            sample = x if take == n else x[np.sort(rng.choice(n, take, replace=False))]
            index.train(sample)
        index.add_with_ids(x, ids)
        index, device = place_index(index, spec.device, spec.fallback)
        return cls(index, factory, spec.search_params, device)

    def set_params(self, params: Mapping[str, float]) -> None:
        """Set search parameters (``nprobe``, ``efSearch``, ``k_factor_rf``...) via ParameterSpace."""
        space = parameter_space(self.device)
        for name, value in params.items():
            try:
                space.set_index_parameter(self.index, str(name), float(value))
            except RuntimeError:
                raise ConfigError(
                    f"index search parameter {name!r} does not apply to {self.factory!r}"
                ) from None
            self.params[str(name)] = value

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        excluded: sp.csr_matrix | None = None,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ids per query; ``excluded`` (CSR aligned with the queries, columns = ids)
        removes items. Returns ``(scores, ids)`` with ``EMPTY`` ids where too few were found.
        Queries go ``batch_size`` at a time, each batch fetching ``k`` plus its own largest
        exclusion count (one heavy buyer does not widen every user's search)."""
        k = check_k(k, self.ntotal)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ModelError(f"query shape {q.shape} does not match index dimension {self.dim}")
        if len(q) <= batch_size:
            return self._search(q, k, excluded)
        parts = [self._search(q[s : s + batch_size], k,
                              excluded[s : s + batch_size] if excluded is not None else None)
                 for s in range(0, len(q), batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _search(self, q: np.ndarray, k: int, excluded: sp.csr_matrix | None
                ) -> tuple[np.ndarray, np.ndarray]:
        extra = int(np.diff(excluded.indptr).max()) if excluded is not None and excluded.nnz else 0
        fetch = min(k + extra, self.ntotal)
        out_s, out_i, tied = self._fetch(q, k, fetch, excluded)
        # a run of equal scores cut by the fetch limit: fetch those rows wider until it ends,
        # so the tie rule (lower id first) also holds across the cut
        rows = np.flatnonzero(tied)
        while len(rows) and fetch < self.ntotal:
            fetch = min(2 * fetch, self.ntotal)
            sub = excluded[rows] if excluded is not None else None
            out_s[rows], out_i[rows], tied = self._fetch(q[rows], k, fetch, sub)
            rows = rows[tied]
        return out_s, out_i

    def _fetch(self, q: np.ndarray, k: int, fetch: int, excluded: sp.csr_matrix | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``fetch`` raw results per query, exclusions dropped, compacted to ``k``, and which
        rows end on a score equal to their ``k``-th (the tie may go on past the cut)."""
        scores, ids = self.index.search(q, fetch)
        if self.metric == "l2":
            scores = -scores  # higher is better everywhere
        last_s, last_valid = scores[:, -1].copy(), ids[:, -1] >= 0
        if excluded is not None and excluded.nnz:
            ids = np.where(_excluded_mask(ids, excluded), EMPTY, ids)
        out_s, out_i = _compact(scores, ids, k)
        tied = last_valid & (out_i[:, -1] >= 0) & (last_s == out_s[:, -1])
        return out_s, out_i, tied

    def to_bytes(self) -> bytes:
        """Serialised index."""
        return bytes(faiss.serialize_index(to_cpu(self.index, self.device)))

    @classmethod
    def from_bytes(cls, data: bytes, factory: str, params: Mapping[str, float]) -> ItemIndex:
        """Inverse of :meth:`to_bytes`."""
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(index, factory, params)


def _apply_build_params(index: faiss.Index, params: Mapping[str, float]) -> None:
    wrapper: Any = faiss.downcast_index(index)
    inner = faiss.downcast_index(wrapper.index)
    for name, value in params.items():
        if name == "efConstruction" and hasattr(inner, "hnsw"):
            inner.hnsw.efConstruction = int(value)
        else:
            raise ConfigError(f"index build parameter {name!r} does not apply to this index")


def _excluded_mask(ids: np.ndarray, excluded: sp.csr_matrix) -> np.ndarray:
    n_cols = np.int64(max(excluded.shape[1], int(ids.max()) + 1, 1))
    coo = excluded.tocoo()
    keys = coo.row.astype(np.int64) * n_cols + coo.col.astype(np.int64)
    query = np.arange(ids.shape[0], dtype=np.int64)[:, None] * n_cols + ids
    return member(keys, query) & (ids >= 0)


def valid_first(ids: np.ndarray, k: int) -> np.ndarray:
    """Column order moving each row's valid ids (>= 0) to the front, stably; its first ``k``."""
    return np.argsort(ids < 0, axis=1, kind="stable")[:, :k]


def _compact(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid ids first, ordered by the package's tie rule (score, then lower id: FAISS leaves
    equal scores in heap order), keep the first ``k``. Exact among the fetched candidates; a
    tie straddling the fetch limit is cut where FAISS cut it."""
    order = sort_rows(scores, ids)[:, :k]
    ids = np.take_along_axis(ids, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=EMPTY)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
    return scores, ids.astype(np.int64)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
