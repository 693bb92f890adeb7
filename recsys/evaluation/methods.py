"""Build the evaluated methods from ``eval.methods`` (one mapping per method, by ``kind``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.errors import ConfigError
from recsys.evaluation.baselines import (
    PopularityRanker,
    RepurchaseRanker,
    embedding_ranker,
    fit_als,
    fit_bpr,
    fit_bpr_mf,
    fit_ease,
    fit_itemknn,
    history_weights,
    load_embedding_model,
    popularity_scores,
)
from recsys.evaluation.baselines.bundle import bundle_ranker
from recsys.evaluation.eval_data import EvalData
from recsys.evaluation.guard import check_same_data, checkpoint_fingerprint
from recsys.evaluation.protocols import Ranker
from recsys.evaluation.ranked import ranked_method
from recsys.evaluation.rankers import EmbeddingRanker, HistoryFirstRanker, IndexRanker, ScoreRanker
from recsys.retrieval.index_spec import IndexSpec

log = logging.getLogger(__name__)
KINDS = ("popularity", "repurchase", "als", "bpr", "bpr_mf", "ease", "itemknn", "checkpoint",
         "bundle", "history_first", "ranked")
# settings that read interaction times: a method using one is skipped on data without them
TIME_SETTINGS = ("window_days", "half_life_days", "fallback_window_days")


@dataclass
class BuildInfo:
    """What :func:`build_methods` did: seconds spent fitting each method, skipped methods."""

    fit_seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def build_methods(
    specs: Mapping[str, Mapping[str, Any]],
    data: EvalData,
    *,
    batch_size: int,
    seed: int,
    threads: int,
    index: IndexSpec | None = None,
    info: BuildInfo | None = None,
) -> dict[str, Ranker]:
    """Methods in config order; disabled ones, checkpoints without a path and methods needing
    what the data lacks are skipped (reasons and fit seconds go to ``info`` when given).

    Users are scored ``batch_size`` at a time; ``seed`` and ``threads`` go to ALS / BPR.
    Embedding methods rank through a FAISS index built from ``index`` when it is given.
    """
    built: dict[str, Ranker] = {}
    info = info if info is not None else BuildInfo()
    for name, spec in specs.items():
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"eval.methods.{name}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        reason = skip_reason(kind, spec, data, set(info.skipped))
        if reason:
            log.info("method %s skipped: %s", name, reason)
            info.skipped[name] = reason
            continue
        start = time.perf_counter()
        method = _build(name, kind, spec, data, built, batch_size, seed, threads)
        info.fit_seconds[name] = time.perf_counter() - start
        if isinstance(method, ScoreRanker | EmbeddingRanker):
            method.batch_size = batch_size
        if index is not None and isinstance(method, EmbeddingRanker):
            method = IndexRanker.build(method, index)
        built[name] = method
    if not built:
        raise ConfigError("eval.methods: no method to evaluate")
    return built


def skip_reason(kind: str, spec: Mapping[str, Any], data: EvalData, skipped: set[str]) -> str:
    """Why a configured method is not run ("" when it is)."""
    if not spec.get("enabled", True):
        return "disabled"
    if kind in ("checkpoint", "bundle") and not spec.get("path"):
        return "no path"
    if kind == "ranked" and len(data.history_splits) < 2:
        return "it learns from the split before the evaluated one (evaluate it on test)"
    if kind == "history_first" and spec.get("base") in skipped:
        return f"its base {spec.get('base')} is skipped"
    if kind == "ease" and data.n_items > int(spec.get("max_items") or data.n_items):
        return f"{data.n_items} items exceed its max_items={spec['max_items']} (dense n^2 gram)"
    timed = [key for key in TIME_SETTINGS if spec.get(key) is not None]
    if timed and not has_timestamps(data):
        return f"{timed[0]} needs interaction timestamps, which this dataset lacks"
    return ""


def has_timestamps(data: EvalData) -> bool:
    """Whether the history rows carry interaction times."""
    frame = data.fit_frame
    return "timestamp" in frame.columns and bool(frame["timestamp"].notna().any())


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
    hist = data.fit_frame
    try:
        if kind == "popularity":
            return PopularityRanker(popularity_scores(hist, data.n_items, spec.get("window_days")))
        if kind == "repurchase":
            fallback = popularity_scores(hist, data.n_items, spec.get("fallback_window_days"))
            weights = history_weights(hist, data.n_users, data.n_items, spec.get("half_life_days"))
            return RepurchaseRanker(weights, fallback)
        if kind == "als":
            return fit_als(data.fit, factors=int(spec["factors"]),
                           regularization=float(spec["regularization"]),
                           iterations=int(spec["iterations"]), alpha=float(spec["alpha"]),
                           seed=seed, threads=threads)
        if kind == "bpr":
            return fit_bpr(data.fit, factors=int(spec["factors"]),
                           learning_rate=float(spec["learning_rate"]),
                           regularization=float(spec["regularization"]),
                           iterations=int(spec["iterations"]), seed=seed, threads=threads)
        if kind == "bpr_mf":
            return fit_bpr_mf(data.fit, factors=int(spec["factors"]),
                              learning_rate=float(spec["learning_rate"]),
                              regularization=float(spec["regularization"]),
                              epochs=int(spec["epochs"]), batch_size=int(spec["batch_size"]),
                              seed=seed)
        if kind == "ease":
            return fit_ease(data.fit, l2=float(spec["l2"]), dtype=str(spec["dtype"]),
                            dropout=float(spec.get("dropout", 0.0)), gram=data.item_gram)
        if kind == "itemknn":
            return fit_itemknn(data.fit, k=int(spec["k"]), shrink=float(spec["shrink"]),
                               gram=data.item_gram)
        if kind == "checkpoint":
            check_same_data("checkpoint", spec["path"], checkpoint_fingerprint(spec["path"]), data)
            model = load_embedding_model(spec["path"], str(spec["device"]), data.fit_names)
            return embedding_ranker(model, data.users, batch_size)
        if kind == "bundle":
            return bundle_ranker(spec["path"], data)
        if kind == "ranked":
            return ranked_method(spec, data)
        base = str(spec.get("base"))
        if base not in built:
            raise ConfigError(f"eval.methods.{name}.base: {base!r} is not an earlier method")
        weights = history_weights(hist, data.n_users, data.n_items, spec.get("half_life_days"))
        return HistoryFirstRanker(weights, built[base], spec.get("max_history"))
    except KeyError as err:
        raise ConfigError(f"eval.methods.{name}: missing setting {err}") from None
    except ConfigError as err:  # a method's own setting: named by its full config key
        if err.column is None or err.file is not None or err.column.startswith("eval."):
            raise
        raise ConfigError(err.message, column=f"eval.methods.{name}.{err.column}") from None
