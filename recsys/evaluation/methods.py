"""Build the evaluated methods from ``eval.methods`` (one mapping per method, by ``kind``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from recsys.errors import ConfigError
from recsys.evaluation.baselines import (
    PopularityRanker,
    RepurchaseRanker,
    embedding_ranker,
    fit_als,
    fit_bpr,
    history_weights,
    load_embedding_model,
    popularity_scores,
)
from recsys.evaluation.eval_data import EvalData
from recsys.evaluation.protocols import Ranker
from recsys.evaluation.rankers import EmbeddingRanker, HistoryFirstRanker, IndexRanker, ScoreRanker
from recsys.retrieval.index_spec import IndexSpec

log = logging.getLogger(__name__)
KINDS = ("popularity", "repurchase", "als", "bpr", "checkpoint", "history_first")


def build_methods(
    specs: Mapping[str, Mapping[str, Any]],
    data: EvalData,
    *,
    batch_size: int,
    seed: int,
    threads: int,
    index: IndexSpec | None = None,
) -> dict[str, Ranker]:
    """Methods in config order; disabled ones and checkpoints without a path are skipped.

    Users are scored ``batch_size`` at a time; ``seed`` and ``threads`` go to ALS / BPR.
    Embedding methods rank through a FAISS index built from ``index`` when it is given.
    """
    built: dict[str, Ranker] = {}
    skipped: set[str] = set()
    for name, spec in specs.items():
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"eval.methods.{name}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        if not spec.get("enabled", True) or (kind == "checkpoint" and not spec.get("path")) or (
            kind == "history_first" and spec.get("base") in skipped
        ):
            log.info("method %s skipped (disabled, no checkpoint path or skipped base)", name)
            skipped.add(name)
            continue
        method = _build(name, kind, spec, data, built, batch_size, seed, threads)
        if isinstance(method, ScoreRanker | EmbeddingRanker):
            method.batch_size = batch_size
        if index is not None and isinstance(method, EmbeddingRanker):
            method = IndexRanker.build(method, index)
        built[name] = method
    if not built:
        raise ConfigError("eval.methods: no method to evaluate")
    return built


def _build(
    name: str,
    kind: str,
    spec: Mapping[str, Any],
    data: EvalData,
    built: Mapping[str, Ranker],
    batch_size: int,
    seed: int,
    threads: int,
) -> Ranker:
    hist = data.history_frame
    try:
        if kind == "popularity":
            return PopularityRanker(popularity_scores(hist, data.n_items, spec.get("window_days")))
        if kind == "repurchase":
            fallback = popularity_scores(hist, data.n_items, spec.get("fallback_window_days"))
            weights = history_weights(hist, data.n_users, data.n_items, spec.get("half_life_days"))
            return RepurchaseRanker(weights, fallback)
        if kind == "als":
            return fit_als(data.history, factors=int(spec["factors"]),
                           regularization=float(spec["regularization"]),
                           iterations=int(spec["iterations"]), alpha=float(spec["alpha"]),
                           seed=seed, threads=threads)
        if kind == "bpr":
            return fit_bpr(data.history, factors=int(spec["factors"]),
                           learning_rate=float(spec["learning_rate"]),
                           regularization=float(spec["regularization"]),
                           iterations=int(spec["iterations"]), seed=seed, threads=threads)
        if kind == "checkpoint":
            model = load_embedding_model(spec["path"], str(spec["device"]), data.history_splits)
            return embedding_ranker(model, data.users, batch_size)
        base = str(spec.get("base"))
        if base not in built:
            raise ConfigError(f"eval.methods.{name}.base: {base!r} is not an earlier method")
        weights = history_weights(hist, data.n_users, data.n_items, spec.get("half_life_days"))
        return HistoryFirstRanker(weights, built[base], spec.get("max_history"))
    except KeyError as err:
        raise ConfigError(f"eval.methods.{name}: missing setting {err}") from None
