"""Offline evaluation: full ranking over the catalogue for every method, overall and by slice."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.errors import ConfigError
from recsys.evaluation.eval_data import EvalData
from recsys.evaluation.metrics import catalogue_coverage, novelty, ranking_metrics
from recsys.evaluation.protocols import Ranker
from recsys.evaluation.slices import Slice, build_slices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSettings:
    """Cut-offs, the headline ``main_k``, exclusion of history items and segment columns."""

    ks: tuple[int, ...]
    main_k: int
    exclude_purchased: bool
    segments: tuple[str, ...]
    min_segment_users: int
    rare_item_max_users: int = 0  # > 0: a ``rare_items`` slice (at most this many history users)

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"eval.ks must be positive cut-offs, got {list(self.ks)}")
        if self.main_k not in self.ks:
            raise ConfigError(f"eval.main_k={self.main_k} must be one of eval.ks {list(self.ks)}")
        if self.rare_item_max_users < 0:
            raise ConfigError(f"eval.rare_item_max_users must be >= 0, got "
                              f"{self.rare_item_max_users}", column="eval.rare_item_max_users")

    @property
    def max_k(self) -> int:
        return max(self.ks)


@dataclass
class MethodResult:
    """Metrics of one method: overall, per slice, and the seconds its ranking took."""

    overall: dict[str, float]
    slices: dict[str, dict[str, float]]
    seconds: float


@dataclass
class EvalResult:
    """All methods on one split; :meth:`to_dict` is the ``metrics.json`` document."""

    split: str
    data: str
    settings: EvalSettings
    n_users: int
    n_items: int
    methods: dict[str, MethodResult] = field(default_factory=dict)
    slice_users: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "data": self.data,
            "k": self.settings.main_k,
            "ks": list(self.settings.ks),
            "exclude_purchased": self.settings.exclude_purchased,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "methods": {name: r.overall for name, r in self.methods.items()},
            "slices": {
                s: {"n_users": n, "methods": {m: r.slices[s] for m, r in self.methods.items()
                                             if s in r.slices}}
                for s, n in self.slice_users.items()
            },
            "seconds": {name: r.seconds for name, r in self.methods.items()},
        }


def rank_users(
    ranker: Ranker, data: EvalData, k: int, exclude_purchased: bool
) -> np.ndarray:
    """Top ``k`` items for every evaluated user (history removed when asked)."""
    exclude = data.history if exclude_purchased else None
    return ranker.top_k(data.users, k, exclude)


def method_metrics(
    top: np.ndarray,
    data: EvalData,
    settings: EvalSettings,
    slices: Sequence[Slice],
) -> MethodResult:
    """Overall metrics, coverage and novelty at every k, and the ranking metrics per slice."""
    overall = ranking_metrics(top, data.user_truth, settings.ks)
    for k in settings.ks:
        overall[f"coverage@{k}"] = catalogue_coverage(top[:, :k], data.n_items)
        overall[f"novelty@{k}"] = novelty(top[:, :k], data.item_user_counts, data.n_history_users)
    per_slice = {s.name: ranking_metrics(top[s.rows], s.truth, settings.ks) for s in slices}
    return MethodResult(overall, per_slice, 0.0)


def evaluate(
    methods: Mapping[str, Ranker],
    data: EvalData,
    settings: EvalSettings,
    data_name: str = "",
) -> EvalResult:
    """Rank the whole catalogue for the evaluated users with each method and score it."""
    if settings.max_k > data.n_items:
        raise ConfigError(f"eval.ks: k={settings.max_k} exceeds the catalogue of {data.n_items}")
    slices = build_slices(data, settings.segments, settings.min_segment_users,
                          rare_max_users=settings.rare_item_max_users)
    result = EvalResult(data.split, data_name, settings, len(data.users), data.n_items,
                        slice_users={s.name: len(s.rows) for s in slices})
    for name, ranker in methods.items():
        start = time.perf_counter()
        top = rank_users(ranker, data, settings.max_k, settings.exclude_purchased)
        seconds = time.perf_counter() - start
        res = method_metrics(top, data, settings, slices)
        res.seconds = seconds
        result.methods[name] = res
        log.info("%s: recall@%d=%.4f (%.2fs)", name, settings.main_k,
                 res.overall.get(f"recall@{settings.main_k}", 0.0), seconds)
    return result
