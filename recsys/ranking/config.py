"""Typed settings of the two-stage pipeline from the ``candidates`` and ``ranker`` config groups,
and the item / user tables turned into the :class:`Catalog` the sources and features read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import ConfigError, DataError
from recsys.ranking.candidates import check_budget
from recsys.ranking.features import Catalog
from recsys.ranking.model import RankerSpec

KINDS = ("repurchase", "copurchase", "siblings", "popularity", "new_items", "taste",
         "embedding")
EARLIER = ("missing", "drop")  # earlier training periods with a two-tower (ranker.two_tower_earlier)


@dataclass(frozen=True)
class RankingConfig:
    """``budget`` candidates per source and user, the sources by name, what the features read,
    and the ranker; ``batch_users`` users get candidates at a time."""

    budget: int
    batch_users: int
    recall_at: tuple[int, ...]
    sources: dict[str, dict[str, Any]]
    windows: tuple[float, ...]
    price_column: str | None
    user_columns: tuple[str, ...]
    item_columns: tuple[str, ...]
    affinity_columns: tuple[str, ...]
    ranker: RankerSpec
    image_features: str | None = None
    image_recent: int = 5
    extra_periods: int = 0
    half_lives: tuple[float, ...] = ()
    basket_half_life: float | None = None
    two_tower_similarity: bool = False
    two_tower_earlier: str = "missing"
    event_weights: dict[str, float] | None = None  # taste features from these event types
    event_smoothing: float = 0.05


def ranking_config(candidates: Mapping[str, Any], ranker: Mapping[str, Any]) -> RankingConfig:
    """Check and type the ``candidates`` and ``ranker`` config nodes (plain dicts)."""
    try:
        sources = {str(n): dict(s) for n, s in candidates["sources"].items()
                   if s is not None and s.get("enabled", True)}
        for name, spec in sources.items():
            if spec.get("kind") not in KINDS:
                raise ConfigError(f"candidates.sources.{name}.kind: {spec.get('kind')!r} is not "
                                  f"one of {', '.join(KINDS)}",
                                  column=f"candidates.sources.{name}.kind")
            _check_source(name, spec)
        feats = candidates["features"]
        for name, spec in sources.items():
            if spec["kind"] == "taste" and feats.get("events") is None:
                raise ConfigError(f"candidates.sources.{name}: a taste source reads the "
                                  "events of candidates.features.events, which is not set",
                                  column=f"candidates.sources.{name}")
        if feats.get("events") is not None and not feats.get("affinity_columns"):
            raise ConfigError("candidates.features.events: the taste features are shares of "
                              "affinity_columns values, and none are set",
                              column="candidates.features.events")
        model = RankerSpec(params=dict(ranker["params"]),
                          num_boost_round=int(ranker["num_boost_round"]),
                          seed=int(ranker["seed"]), threads=int(ranker["threads"]),
                          max_negatives=None if ranker.get("max_negatives") is None
                          else int(ranker["max_negatives"]))
        return RankingConfig(
            budget=check_budget(candidates["budget"]),
            batch_users=check_budget(candidates["batch_users"], "candidates.batch_users"),
            recall_at=tuple(check_budget(n, "candidates.recall_at") for n in candidates["recall_at"]),
            sources=sources,
            windows=tuple(float(w) for w in feats["popularity_windows"]),
            price_column=feats.get("price_column"),
            user_columns=tuple(feats.get("user_columns") or ()),
            item_columns=tuple(feats.get("item_columns") or ()),
            affinity_columns=tuple(feats.get("affinity_columns") or ()),
            ranker=model,
            extra_periods=int(ranker.get("extra_periods") or 0),
            image_features=feats.get("image_features"),
            image_recent=check_budget(feats.get("image_recent", 5), "candidates.features.image_recent"),
            half_lives=tuple(_positive(h, "candidates.features.decay_half_lives")
                             for h in feats.get("decay_half_lives") or ()),
            basket_half_life=None if feats.get("basket_half_life") is None else
            _positive(feats["basket_half_life"], "candidates.features.basket_half_life"),
            two_tower_similarity=bool(feats.get("two_tower_similarity", False)),
            two_tower_earlier=_choice(ranker.get("two_tower_earlier", "missing"),
                                      EARLIER, "ranker.two_tower_earlier"),
            **_events(feats.get("events")),
        )
    except KeyError as err:
        raise ConfigError(f"candidates/ranker config: missing setting {err}") from None


def _check_source(name: str, spec: dict[str, Any]) -> None:
    """A ConfigError naming the key of a source's own budget that is not a positive integer, or
    of a new-items source's smoothing (<= 0) or max_purchases (< 0)."""
    key = f"candidates.sources.{name}"
    if spec.get("budget") is not None:
        check_budget(spec["budget"], f"{key}.budget")
    if spec["kind"] == "taste":
        _positive(spec.get("smoothing"), f"{key}.smoothing", "number")
        weight = spec.get("popularity_weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ConfigError(f"{key}.popularity_weight must be a number >= 0, got {weight!r}",
                              column=f"{key}.popularity_weight")
        if spec.get("window_days") is not None:
            _positive(spec["window_days"], f"{key}.window_days")
    if spec["kind"] == "new_items":
        _positive(spec.get("smoothing"), f"{key}.smoothing", "number")
        most = spec.get("max_purchases")
        if isinstance(most, bool) or not isinstance(most, int) or most < 0:
            raise ConfigError(f"{key}.max_purchases must be an integer >= 0, got {most!r}",
                              column=f"{key}.max_purchases")


def _events(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """``candidates.features.events`` (None: off) as RankingConfig fields: a weight >= 0 per
    event type, at least one of them positive, and a positive smoothing."""
    if spec is None:
        return {}
    key = "candidates.features.events"
    weights = spec.get("weights")
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(f"{key}.weights must map event types to weights, got {weights!r}",
                          column=f"{key}.weights")
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{key}.weights.{name} must be a number >= 0, got {value!r}",
                              column=f"{key}.weights.{name}")
    if not any(float(v) > 0 for v in weights.values()):
        raise ConfigError(f"{key}.weights: every weight is 0, so no event would count",
                          column=f"{key}.weights")
    return {"event_weights": {str(n): float(v) for n, v in weights.items()},
            "event_smoothing": _positive(spec.get("smoothing"), f"{key}.smoothing", "number")}


def _positive(value: Any, key: str, what: str = "number of days") -> float:
    """``value`` as a positive ``what``; a ConfigError naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{key} must be a positive {what}, got {value!r}", column=key)
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], key: str) -> str:
    """``value`` when it is one of ``choices``; a ConfigError naming ``key`` otherwise."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}", column=key)
    return str(value)


def _column(table: pd.DataFrame, column: str, key: str, what: str) -> pd.Series:
    if column not in table.columns:
        raise ConfigError(f"{key}: the {what} table has no column {column!r} (columns: "
                          f"{', '.join(map(str, table.columns[:12]))}...)", column=key)
    return table[column]


def group_codes(items: pd.DataFrame, column: str, prefix: int | None, key: str) -> np.ndarray:
    """A code per item (by ``item_idx``) of its value of ``column`` (its first ``prefix``
    characters when given); -1 where missing."""
    values = _column(items.sort_values("item_idx"), column, key, "items")
    if prefix is not None:
        values = values.astype("string").str[: int(prefix)]
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64)


def segment_codes(users: pd.DataFrame, column: str, bins: Sequence[float] | None, key: str
                  ) -> np.ndarray:
    """A segment code per user (by ``user_idx``): the bin of a numeric ``column`` when ``bins``
    are given, else its distinct values; -1 where missing."""
    values = _column(users.sort_values("user_idx"), column, key, "users")
    if bins is not None:
        cut = pd.cut(values.astype("float64"), bins=list(bins), labels=False)
        return np.nan_to_num(cut.to_numpy(np.float64), nan=-1).astype(np.int64)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64)


def _numeric(table: pd.DataFrame, columns: Sequence[str], key: str, what: str) -> np.ndarray:
    table = table.sort_values(f"{what[:-1]}_idx")
    out = np.full((len(table), len(columns)), np.nan)
    for j, col in enumerate(columns):
        values = _column(table, col, key, what)
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[:, j] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        else:
            codes, _ = pd.factorize(values, use_na_sentinel=True)
            out[:, j] = np.where(codes >= 0, codes, np.nan)
    return out


def build_catalog(cfg: RankingConfig, items: pd.DataFrame, users: pd.DataFrame) -> Catalog:
    """The :class:`Catalog` of ``cfg``: the sibling source's groups (when configured), prices,
    user and item attribute columns; a ConfigError names a configured column that is absent."""
    groups = None
    for name, spec in cfg.sources.items():
        if spec["kind"] == "siblings":
            key = f"candidates.sources.{name}.column"
            if not spec.get("column"):
                raise ConfigError(f"{key} is not set: name the item column whose value siblings "
                                  "share (candidates/data/<dataset>.yaml), or disable the source",
                                  column=key)
            groups = group_codes(items, str(spec["column"]), spec.get("prefix"), key)
    price = None
    if cfg.price_column is not None:
        col = _column(items.sort_values("item_idx"), cfg.price_column,
                      "candidates.features.price_column", "items")
        price = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
    return Catalog(groups=groups, price=price,
                   user_values=_numeric(users, cfg.user_columns,
                                        "candidates.features.user_columns", "users"),
                   user_names=cfg.user_columns,
                   item_values=_numeric(items, cfg.item_columns,
                                        "candidates.features.item_columns", "items"),
                   item_names=cfg.item_columns,
                   affinity={c: group_codes(items, c, None, "candidates.features.affinity_columns")
                             for c in cfg.affinity_columns},
                   images=None if cfg.image_features is None else
                   image_vectors(Path(cfg.image_features), len(items)),
                   image_recent=cfg.image_recent)


def image_vectors(directory: Path, n_items: int) -> np.ndarray:
    """Unit item image vectors from a features cache (``item_features.npy`` aligned to item_idx,
    ``item_mask.npy``), zero rows for items without an image; a DataError names the file."""
    try:
        feats = np.load(directory / "item_features.npy", allow_pickle=False).astype(np.float32)
        mask = np.load(directory / "item_mask.npy", allow_pickle=False).astype(bool)
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable image features ({err})", file=str(directory)) from None
    if feats.ndim != 2 or len(feats) != n_items or mask.shape != (n_items,):
        raise DataError(f"image features of shape {feats.shape} do not cover the {n_items} items",
                        file=str(directory / "item_features.npy"))
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    ok = mask[:, None] & (norms > 0)
    return np.where(ok, feats / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
