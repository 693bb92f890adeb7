"""Two-stage recommendation: candidates from every source as of a cut-off, merged, featurised,
and ordered by the learned ranker. Trained on one period's labels (features as of its start),
applied to a later period (features as of that one's start)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.arrays import member
from recsys.errors import ConfigError
from recsys.ranking.candidates import (
    Candidates,
    CandidateSet,
    merge,
    pair_keys,
    rank_pairs,
    recall_table,
)
from recsys.ranking.config import RankingConfig, segment_codes
from recsys.ranking.features import (
    Catalog,
    FeatureMatrix,
    HistoryStats,
    build_features,
    history_stats,
)
from recsys.ranking.history import History
from recsys.ranking.model import Ranker, fit_ranker
from recsys.ranking.sources import (
    CandidateSource,
    CoPurchaseSource,
    EmbeddingSource,
    PopularitySource,
    RepurchaseSource,
    SiblingSource,
    TasteSource,
    TwoTower,
)
from recsys.retrieval.similarity import prepare
from recsys.retrieval.topk import EMPTY


@dataclass(frozen=True)
class Period:
    """Users ranked from ``history`` (as of its cut-off), never shown ``exclude``'s non-zeros
    (``[n_users, n_items]``, or None); ``labels``: their purchases in the period (training);
    ``two_tower`` false: the two-tower's user vectors are not as of this history (an earlier
    training period they have seen), so its candidates are absent and its scores missing."""

    history: History
    users: np.ndarray
    exclude: sp.csr_matrix | None = None
    labels: sp.csr_matrix | None = None
    two_tower: bool = True

    def of_users(self, users: np.ndarray) -> Period:
        """The same period for ``users`` only."""
        return replace(self, users=np.asarray(users, np.int64))


@dataclass(frozen=True)
class Scored:
    """Candidates of a period with their features and (when labelled) labels."""

    cands: CandidateSet
    features: FeatureMatrix
    labels: np.ndarray | None


class TwoStage:
    """Sources, features and ranker of one configuration over one catalogue."""

    def __init__(self, cfg: RankingConfig, catalog: Catalog,
                 segments: dict[str, np.ndarray] | None = None,
                 embedding: TwoTower | None = None) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.segments = segments or {}
        self.embedding = embedding
        self._fitted: tuple[History, dict[str, CandidateSource]] | None = None
        self._stats: HistoryStats | None = None
        self._item_vectors: np.ndarray | None = None

    def with_embedding(self, embedding: TwoTower | None) -> TwoStage:
        """The same pipeline with another two-tower (user vectors as of another history)."""
        return TwoStage(self.cfg, self.catalog, self.segments, embedding)

    def source_names(self) -> list[str]:
        """Configured sources that can run (an embedding source needs a two-tower, a new-items
        or taste source affinity columns)."""
        return [n for n, s in self.cfg.sources.items()
                if (s["kind"] != "embedding" or self.embedding is not None)
                and (s["kind"] not in ("new_items", "taste") or self.catalog.affinity)]

    def sources(self, history: History) -> dict[str, CandidateSource]:
        """Every source fitted on ``history`` (kept for the next call on the same history)."""
        if self._fitted is not None and self._fitted[0] is history:
            return self._fitted[1]
        out: dict[str, CandidateSource] = {}
        for name in self.source_names():
            spec = self.cfg.sources[name]
            kind = spec["kind"]
            half_life = spec.get("half_life_days")
            if kind == "repurchase":
                out[name] = RepurchaseSource(history, half_life)
            elif kind == "copurchase":
                out[name] = CoPurchaseSource(history, int(spec["neighbours"]),
                                             float(spec["shrink"]), half_life,
                                             spec.get("neighbours_of") == "candidate")
            elif kind == "siblings":
                if self.catalog.groups is None:
                    raise ConfigError(f"candidates.sources.{name}: no item groups were built",
                                      column=f"candidates.sources.{name}.column")
                out[name] = SiblingSource(history, self.catalog.groups, half_life,
                                          spec.get("window_days"))
            elif kind == "new_items":
                out[name] = TasteSource(history, self.catalog.affinity,
                                        int(spec["max_purchases"]), float(spec["smoothing"]))
            elif kind == "taste":
                out[name] = TasteSource(history, self.catalog.affinity, None,
                                        float(spec["smoothing"]), events=True,
                                        popularity_weight=float(spec["popularity_weight"]),
                                        window_days=spec.get("window_days"))
            elif kind == "popularity":
                out[name] = PopularitySource(history, spec.get("window_days"),
                                             self.segments.get(name))
            elif self.embedding is not None:
                out[name] = EmbeddingSource(self.embedding.model, self.embedding.index,
                                            self.cfg.batch_users)
        self._fitted = (history, out)
        return out

    def budget(self, name: str) -> int:
        """Candidates per user of source ``name``: its own ``budget`` or the shared one."""
        own = self.cfg.sources[name].get("budget")
        return self.cfg.budget if own is None else int(own)  # checked by ranking_config

    def candidates(self, period: Period, budget: int | None = None,
                   only: str | None = None) -> dict[str, Candidates]:
        """Each source's (or source ``only``'s) best ``budget`` per user of ``period`` (default:
        each source's own, see :meth:`budget`)."""
        lists: dict[str, list[Candidates]] = {}
        users = np.asarray(period.users, np.int64)
        step = self.cfg.batch_users
        for name, source in self.sources(period.history).items():
            if only is not None and name != only:
                continue
            parts: list[Candidates] = []
            absent = isinstance(source, EmbeddingSource) and not period.two_tower
            for s in range(0, 0 if absent else len(users), step):
                batch = users[s : s + step]
                excl = period.exclude[batch] if period.exclude is not None else None
                got = source.top(batch, self.budget(name) if budget is None else budget, excl)
                parts.append(Candidates(got.rows + s, got.items, got.scores, got.ranks))
            lists[name] = parts
        empty = {"rows": np.empty(0, np.int64), "items": np.empty(0, np.int64),
                 "scores": np.empty(0), "ranks": np.empty(0, np.int64)}
        return {name: Candidates(*(np.concatenate([getattr(p, f) for p in parts]) if parts else
                                   empty[f] for f in ("rows", "items", "scores", "ranks")))
                for name, parts in lists.items()}

    def features(self, cands: CandidateSet, history: History | HistoryStats,
                 two_tower: bool = True) -> FeatureMatrix:
        """The pair features of ``cands`` from ``history`` (or its :func:`history_stats`), with
        the two-tower's similarity of every pair when configured (missing where ``two_tower``
        is false: see :class:`Period`)."""
        feats = build_features(cands, history, self.catalog, self.cfg.windows,
                               half_lives=self.cfg.half_lives,
                               basket_half_life=self.cfg.basket_half_life,
                               taste_smoothing=self.cfg.event_smoothing)
        if self.embedding is None or not self.cfg.two_tower_similarity:
            return feats
        sim = self.two_tower_similarity(cands) if two_tower else np.full(len(cands), np.nan)
        values = np.empty((len(feats.names) + 1, len(cands)), np.float32)  # column-major
        values[:-1] = feats.values.T
        values[-1] = sim
        return FeatureMatrix((*feats.names, "two_tower_sim"), values.T)

    def two_tower_similarity(self, cands: CandidateSet) -> np.ndarray:
        """The two-tower's score (its similarity: dot or cosine) of every candidate pair."""
        assert self.embedding is not None
        model = self.embedding.model
        if self._item_vectors is None:
            self._item_vectors = prepare(np.asarray(model.item_embeddings(self.cfg.batch_users),
                                                    np.float32), model.similarity)
        out = np.empty(len(cands), np.float64)
        step = self.cfg.batch_users
        for s in range(0, len(cands.users), step):
            users = prepare(np.asarray(model.user_embeddings(cands.users[s : s + step]),
                                       np.float32), model.similarity)
            lo, hi = np.searchsorted(cands.rows, [s, s + step])
            out[lo:hi] = np.einsum("ij,ij->i", users[cands.rows[lo:hi] - s],
                                   self._item_vectors[cands.items[lo:hi]])
        return out

    def score_table(self, period: Period, lists: dict[str, Candidates] | None = None) -> Scored:
        """Merged candidates of ``period``, their features and, when labelled, labels."""
        lists = self.candidates(period) if lists is None else lists
        cands = merge(period.users, period.history.n_items, lists)
        if self._stats is None or self._stats.history is not period.history:
            self._stats = history_stats(period.history, self.catalog, self.cfg.windows,
                                        half_lives=self.cfg.half_lives,
                                        basket_half_life=self.cfg.basket_half_life)
        feats = self.features(cands, self._stats, period.two_tower)
        labels = None
        if period.labels is not None:
            truth = sp.coo_matrix(period.labels[cands.users])
            keys = pair_keys(truth.row[truth.data > 0], truth.col[truth.data > 0], cands.n_items)
            labels = member(keys, cands.keys).astype(np.float64)
        return Scored(cands, feats, labels)

    def fit(self, periods: list[Period], source: str = "training labels") -> Ranker:
        """Train the ranker on the labelled ``periods`` (one query per user and period)."""
        values, labels, rows, offset = [], [], [], 0
        names: tuple[str, ...] = ()
        for period in periods:
            if period.labels is None:
                raise ConfigError("a training period has no labels")
            table = self.score_table(period)
            assert table.labels is not None
            values.append(table.features.values)
            labels.append(table.labels)
            rows.append(table.cands.rows + offset)
            names = table.features.names
            offset += len(period.users)
        return fit_ranker(np.concatenate(values), np.concatenate(labels), np.concatenate(rows),
                          names, self.cfg.ranker, source)

    def rank(self, ranker: Ranker, period: Period, k: int, table: Scored | None = None
             ) -> np.ndarray:
        """Top ``k`` items per user of ``period`` by the ranker (``EMPTY`` padded), scored
        ``batch_users`` users at a time (or from a precomputed ``table`` of all of them)."""
        out = np.full((len(period.users), k), EMPTY, dtype=np.int64)
        step = len(period.users) if table is not None else self.cfg.batch_users
        for s in range(0, len(period.users), max(step, 1)):
            part = table or self.score_table(period.of_users(period.users[s : s + step]))
            scores = ranker.predict(part.features.values, part.features.names)
            best = rank_pairs(part.cands.rows, part.cands.items, scores, k)
            out[s + best.rows, best.ranks] = best.items
        return out

    def source_top(self, lists: dict[str, Candidates], n_users: int, k: int
                   ) -> dict[str, np.ndarray]:
        """Each source alone as a ranking: its best ``k`` per user (``EMPTY`` padded)."""
        out = {}
        for name, cand in lists.items():
            top = np.full((n_users, k), EMPTY, dtype=np.int64)
            head = cand.head(k)
            top[head.rows, head.ranks] = head.items
            out[name] = top
        return out

    def recall(self, period: Period, lists: dict[str, Candidates]) -> dict[str, dict[str, float]]:
        """Candidate recall of each source and the union at ``cfg.recall_at`` (needs labels and
        lists generated with a budget of at least the largest)."""
        if period.labels is None:
            raise ConfigError("candidate recall needs the period's labels")
        return recall_table(lists, period.labels[period.users], list(self.cfg.recall_at))


def popularity_segments(cfg: RankingConfig, users: pd.DataFrame) -> dict[str, np.ndarray]:
    """Segment codes per popularity source that names a user ``segment`` column."""
    out = {}
    for name, spec in cfg.sources.items():
        if spec["kind"] == "popularity" and spec.get("segment"):
            out[name] = segment_codes(users, str(spec["segment"]), spec.get("segment_bins"),
                                      f"candidates.sources.{name}.segment")
    return out
