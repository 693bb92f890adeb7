"""The two-stage pipeline (:mod:`recsys.ranking`) as an evaluated method: its ranker is trained
on the labels of the last history split (features as of its start: the splits before it), then
ranks the evaluated split's users from the whole history, under the evaluator's exclusion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import brier_score_loss

from recsys.arrays import member
from recsys.data import load_dataset
from recsys.errors import ConfigError, ModelError
from recsys.evaluation.eval_data import EvalData, interaction_matrix, prepare_eval_data
from recsys.ranking.candidates import Candidates, pair_keys, rank_pairs
from recsys.ranking.config import build_catalog, ranking_config
from recsys.ranking.history import (
    History,
    events_before,
    history_as_of,
    hold_out_last_day,
    hold_out_window,
    label_window_days,
    weighted_events,
    window_start,
)
from recsys.ranking.model import Ranker
from recsys.ranking.pipeline import Period, TwoStage, popularity_segments
from recsys.ranking.sources import TwoTower
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec


@dataclass
class RankedRanker:
    """Top-k of the fitted pipeline (``source`` set: that candidate source alone, unlearned)
    for users of ``data``'s split, ranked from ``history`` (read from ``data`` on first use when
    not given; the methods of one pipeline share one, so its sources and statistics are
    computed once)."""

    pipeline: TwoStage
    ranker: Ranker
    data: EvalData
    source: str | None = None
    history: History | None = None

    @property
    def n_items(self) -> int:
        return self.data.n_items

    def period(self, user_idx: np.ndarray, exclude: sp.csr_matrix | None) -> Period:
        if self.history is None:
            self.history = fit_history(self.data, self.pipeline.cfg.event_weights)
        return Period(self.history, np.asarray(user_idx, np.int64), exclude)

    def top_k(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
              ) -> np.ndarray:
        period = self.period(user_idx, exclude)
        if self.source is None:
            return self.pipeline.rank(self.ranker, period, k)
        lists = self.pipeline.candidates(period, max(k, self.pipeline.cfg.budget), self.source)
        return self.pipeline.source_top({self.source: lists[self.source]}, len(user_idx), k)[
            self.source]


def training_data(data: EvalData) -> EvalData:
    """The labelled period before ``data``'s split: its last history split, with the splits
    before that as history (and ``data``'s fit splits among them, as far as they are)."""
    if len(data.history_splits) < 2:
        raise ConfigError(f"the ranked method learns from the split before {data.split!r}, "
                          f"whose history {list(data.history_splits)} has none before it",
                          column="eval.split")
    label, before = data.history_splits[-1], data.history_splits[:-1]
    fit = tuple(s for s in data.fit_names if s in before) or before
    dataset = load_dataset(Path(data.manifest_path).parent)
    return prepare_eval_data(dataset, label, before, fit if fit != before else None)


def fit_events(data: EvalData, weights: dict[str, float] | None) -> pd.DataFrame | None:
    """Every interaction of ``data``'s fit splits whose event type has a weight (None when no
    weights are configured): what the taste features read."""
    if weights is None:
        return None
    dataset = load_dataset(Path(data.manifest_path).parent)
    frames = [weighted_events(dataset.split(name), weights, f"{dataset.path}/{name}.parquet")
              for name in data.fit_names]
    return pd.concat(frames, ignore_index=True)


def fit_history(data: EvalData, weights: dict[str, float] | None,
                events: pd.DataFrame | None = None) -> History:
    """The history of ``data``'s fit rows as of its end, with their weighted events when
    ``weights`` are configured (``events``: those already read)."""
    history = history_as_of(data.fit_frame, data.n_users, data.n_items,
                            source=data.manifest_path)
    if weights is None:
        return history
    events = fit_events(data, weights) if events is None else events
    assert events is not None
    return replace(history, events=events_before(events, history.cutoff))


def period_of(data: EvalData, exclude_purchased: bool, labelled: bool,
              weights: dict[str, float] | None = None, events: pd.DataFrame | None = None
              ) -> Period:
    """Users of ``data``'s split ranked from its fit rows (and, with ``weights``, their
    weighted events), its history excluded when asked."""
    return Period(fit_history(data, weights, events), data.users,
                  data.history if exclude_purchased else None, data.truth if labelled else None)


def training_periods(train: EvalData, exclude_purchased: bool, extra: int,
                     users: np.ndarray | None = None,
                     weights: dict[str, float] | None = None,
                     events: pd.DataFrame | None = None) -> list[Period]:
    """The labelled period of ``train`` and up to ``extra`` earlier ones inside its history,
    shaped like it: the window of its length before it when it follows the whole history in
    time (a temporal split), else each user's last purchase day (none without timestamps);
    restricted to ``users`` when given. With event ``weights``, each period's events stop where
    its history does: before the window, or before each user's held-out day (``events``: those
    of ``train``'s fit splits already read)."""
    events = fit_events(train, weights) if events is None else events
    first = period_of(train, exclude_purchased, True, weights, events)
    periods = [first]
    frame = train.fit_frame
    window = label_window_days(frame, load_dataset(Path(train.manifest_path).parent)
                               .split(train.split)) if first.history.timed else None
    for _ in range(extra if first.history.timed else 0):
        start = None if window is None else window_start(frame, window)
        frame, held = hold_out_last_day(frame) if window is None else \
            hold_out_window(frame, window)
        if held.empty:
            break
        history = history_as_of(frame, train.n_users, train.n_items, source=train.manifest_path)
        if events is not None:
            user_cut = None if start is not None else \
                held.groupby("user_idx")["timestamp"].min().dt.normalize()
            events = events_before(events, start if start is not None else history.cutoff,
                                   user_cut)
            history = replace(history, events=events)
        labels = interaction_matrix(held, train.n_users, train.n_items)
        periods.append(Period(history, np.unique(held["user_idx"].to_numpy(np.int64)),
                              history.counts if exclude_purchased else None, labels))
    if users is not None:
        periods = [p.of_users(np.intersect1d(p.users, users)) for p in periods]
    return periods


def build_pipeline(spec: Mapping[str, Any], data: EvalData,
                   embedding: TwoTower | None = None) -> TwoStage:
    """The :class:`TwoStage` of ``spec["candidates"]`` / ``spec["ranker"]`` over ``data``'s
    dataset tables."""
    cfg = ranking_config(spec["candidates"], spec["ranker"])
    dataset = load_dataset(Path(data.manifest_path).parent)
    catalog = build_catalog(cfg, dataset.items, dataset.users)
    return TwoStage(cfg, catalog, popularity_segments(cfg, dataset.users), embedding)


def with_two_tower(pipeline: TwoStage, periods: list[Period]) -> list[Period]:
    """Training periods for ``pipeline``: with a two-tower, whose user vectors are as of the
    first period's history only (they have seen the earlier periods' labels), the earlier ones
    carry its candidates absent and its scores missing (``ranker.two_tower_earlier: missing``)
    or are left out (``drop``)."""
    if pipeline.embedding is None:
        return periods
    if pipeline.cfg.two_tower_earlier == "drop":
        return periods[:1]
    return [periods[0], *(replace(p, two_tower=False) for p in periods[1:])]


def fit_ranked(spec: Mapping[str, Any], data: EvalData) -> tuple[TwoStage, Ranker]:
    """Pipeline and ranker trained on the period before ``data``'s split. A two-tower source
    (``spec["two_tower_checkpoint"]``) gives user vectors as of each period's history: the
    training period's from the splits before its labels, the returned pipeline's from
    ``data``'s; earlier periods held out of the history go without it (:func:`with_two_tower`)."""
    train = training_data(data)
    pipeline = build_pipeline(spec, data, two_tower(spec, train))
    periods = training_periods(train, bool(spec["exclude_purchased"]),
                               pipeline.cfg.extra_periods, weights=pipeline.cfg.event_weights)
    ranker = pipeline.fit(with_two_tower(pipeline, periods),
                          source=f"{train.manifest_path} split {train.split!r}")
    if pipeline.embedding is not None:
        pipeline = pipeline.with_embedding(two_tower(spec, data, pipeline.embedding.index))
    return pipeline, ranker


def two_tower(spec: Mapping[str, Any], data: EvalData, index: ItemIndex | None = None
              ) -> TwoTower | None:
    """The two-tower of ``spec["two_tower_checkpoint"]`` (None without one) with user vectors
    from ``data``'s fit splits, searched through ``index``, else the FAISS index exported in the
    serving bundle ``spec["two_tower_bundle"]``, else one built from its item vectors with the
    embedding source's ``index`` settings (conf/index)."""
    path = spec.get("two_tower_checkpoint")
    if not path:
        return None
    from recsys.evaluation.baselines import load_embedding_model
    from recsys.evaluation.guard import check_same_data, checkpoint_fingerprint

    check_same_data("checkpoint", path, checkpoint_fingerprint(path), data)
    model = load_embedding_model(path, str(spec.get("device", "auto")), data.fit_names)
    if index is None and spec.get("two_tower_bundle"):
        index = exported_index(Path(spec["two_tower_bundle"]), data)
    if index is None:
        settings = [s.get("index") for s in spec["candidates"]["sources"].values()
                    if s is not None and s.get("kind") == "embedding"]
        if not settings or not settings[0]:
            raise ConfigError("a two-tower source needs two_tower_bundle (its exported index) "
                              "or the index settings to build one",
                              column="candidates.sources.<embedding>.index")
        items = np.asarray(model.item_embeddings(4096), np.float32)
        index = ItemIndex.build(items, IndexSpec.from_config(settings[0]), model.similarity)
    return TwoTower(model, index)


def exported_index(root: Path, data: EvalData) -> ItemIndex:
    """The FAISS item index of a serving bundle (recsys-export) of ``data``'s dataset."""
    from recsys.evaluation.guard import check_same_data
    from recsys.serving.bundle import INDEX, read_manifest

    manifest = read_manifest(root)
    check_same_data("bundle", root, manifest.get("data_fingerprint"), data)
    try:
        index = ItemIndex.from_bytes((root / INDEX).read_bytes(), manifest["index"]["factory"],
                                     manifest["index"]["params"])
    except (OSError, KeyError, RuntimeError) as err:
        raise ModelError(f"{root / INDEX}: unreadable index ({err})") from None
    if index.ntotal != data.n_items:
        raise ModelError(f"{root / INDEX} indexes {index.ntotal} items, the dataset has "
                         f"{data.n_items}")
    return index


def candidate_lists(pipeline: TwoStage, data: EvalData, exclude_purchased: bool
                    ) -> tuple[Period, dict[str, Candidates]]:
    """The evaluated period and every source's candidates at the largest reported budget."""
    period = period_of(data, exclude_purchased, True, pipeline.cfg.event_weights)
    return period, pipeline.candidates(period, budget=max(pipeline.cfg.recall_at))


def reliability(positive: np.ndarray, probability: np.ndarray, bins: int) -> dict[str, Any]:
    """Calibration of predicted purchase probabilities: Brier score (and that of the constant
    base rate), expected calibration error and a reliability table over ``bins`` quantile bins
    (mean predicted vs observed purchase rate per bin)."""
    y = np.asarray(positive, dtype=float)
    p = np.asarray(probability, dtype=float)
    if not len(y):
        return {"pairs": 0}
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    count = np.bincount(which)
    used = np.flatnonzero(count)
    predicted = np.bincount(which, weights=p)[used] / count[used]
    observed = np.bincount(which, weights=y)[used] / count[used]
    return {"pairs": len(y), "positive_rate": float(y.mean()),
            "brier": float(brier_score_loss(y, p)),
            "brier_base_rate": float(brier_score_loss(y, np.full(len(y), y.mean()))),
            "ece": float(np.sum(count[used] * np.abs(predicted - observed)) / len(y)),
            "table": [{"mean_predicted": float(a), "observed": float(b), "pairs": int(n)}
                      for a, b, n in zip(predicted, observed, count[used], strict=True)]}


def calibration(pipeline: TwoStage, ranker: Ranker, period: Period, k: int, bins: int = 10
                ) -> dict[str, dict[str, Any]]:
    """How well the ranker's purchase probability matches the purchases of a labelled
    ``period`` (never used to fit it): over every candidate pair, and over each user's top
    ``k`` (what the rules see)."""
    table = pipeline.score_table(period)
    assert table.labels is not None
    scores = ranker.predict(table.features.values, table.features.names)
    prob = ranker.probability(scores)
    best = rank_pairs(table.cands.rows, table.cands.items, scores, k)
    top = member(pair_keys(best.rows, best.items, table.cands.n_items), table.cands.keys)
    return {"candidates": reliability(table.labels > 0, prob, bins),
            f"top{k}": reliability(table.labels[top] > 0, prob[top], bins)}


def source_methods(pipeline: TwoStage, ranker: Ranker, data: EvalData,
                   history: History | None = None) -> dict[str, RankedRanker]:
    """The ranked pipeline and each of its candidate sources alone, as evaluated methods, all
    ranking from one ``history`` (``data``'s, read here when not given)."""
    history = fit_history(data, pipeline.cfg.event_weights) if history is None else history
    out = {"ranked": RankedRanker(pipeline, ranker, data, history=history)}
    for name in pipeline.source_names():
        out[f"source_{name}"] = RankedRanker(pipeline, ranker, data, source=name, history=history)
    return out


def user_split(users: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Users in a seeded random order cut at ``fraction``: (training users, held-out users)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"tune_fraction must lie strictly between 0 and 1, got {fraction}",
                          column="tune_fraction")
    order = np.random.default_rng(seed).permutation(len(users))
    cut = round(len(users) * fraction)
    return np.sort(users[order[:cut]]), np.sort(users[order[cut:]])


def tune_split_top(spec: Mapping[str, Any], val: EvalData, fraction: float, seed: int, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Train on ``fraction`` of ``val``'s users and rank the others (validation only: a
    sweep's objective): ``(held-out users, their top k)``. A two-tower source
    (``spec["two_tower_checkpoint"]``) has user vectors as of ``val``'s history."""
    pipeline = build_pipeline(spec, val, two_tower(spec, val))
    fit_users, held = user_split(val.users, fraction, seed)
    excl = bool(spec["exclude_purchased"])
    weights = pipeline.cfg.event_weights
    events = fit_events(val, weights)  # read once for both
    full = period_of(val, excl, True, weights, events)
    periods = training_periods(val, excl, pipeline.cfg.extra_periods, fit_users, weights, events)
    ranker = pipeline.fit(with_two_tower(pipeline, periods),
                          source=f"{val.manifest_path} split {val.split!r}")
    return held, pipeline.rank(ranker, Period(full.history, held, full.exclude), k)


def ranked_method(spec: Mapping[str, Any], data: EvalData) -> RankedRanker:
    """``eval.methods.<name>: {kind: ranked, candidates, ranker, exclude_purchased,
    two_tower_checkpoint, two_tower_bundle, index}``: the fitted pipeline (with a two-tower
    source searched through a FAISS index when a checkpoint of this dataset is given)."""
    pipeline, ranker = fit_ranked(spec, data)
    return RankedRanker(pipeline, ranker, data)
