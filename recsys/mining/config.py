"""Typed view of the ``mining`` config group (values live in conf/mining/*.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.errors import ConfigError

MODEL_NAMES = ("decision_tree", "svm", "gradient_boosting")
ALGORITHMS = ("fpgrowth", "apriori")
BASKET_KEYS = ("order", "user")


@dataclass(frozen=True)
class Thresholds:
    """Association-rule thresholds of one level (item or category). The support threshold follows
    the data's scale: an itemset needs ``min_count`` baskets, so the effective minimum support is
    ``max(min_support, min_count / n_baskets)``."""

    min_support: float
    min_confidence: float
    min_lift: float
    min_count: int = 1

    def support(self, n_baskets: int) -> float:
        return max(self.min_support, self.min_count / max(n_baskets, 1))


def _thresholds(raw: Mapping[str, Any]) -> Thresholds:
    values = {k: float(v) for k, v in raw.items() if k != "min_count"}
    return Thresholds(**values, min_count=int(raw.get("min_count", 1)))


@dataclass(frozen=True)
class AssociationConfig:
    algorithm: str
    max_len: int
    item: Thresholds
    category: Thresholds


@dataclass(frozen=True)
class SegmentationConfig:
    k_min: int
    k_max: int
    profile_features: list[str]
    min_users: int


@dataclass(frozen=True)
class ProfileConfig:
    demographics: list[str]
    top_n: int
    spend_tiers: list[float]
    price_sensitive_below: float
    quality_focused_above: float


@dataclass(frozen=True)
class ClassifierConfig:
    window_days: int
    test_size: float
    min_class_count: int
    models: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class MiningConfig:
    history_splits: list[str]
    purchase_events: list[str]
    basket_key: str
    seed: int
    n_threads: int
    columns: dict[str, list[str]]
    rfm_bins: int
    segmentation: SegmentationConfig
    profiles: ProfileConfig
    association: AssociationConfig
    classifiers: ClassifierConfig

    @classmethod
    def from_cfg(cls, cfg: DictConfig | Mapping[str, Any]) -> MiningConfig:
        """Build from the composed ``mining`` node; raise ConfigError on a missing or bad value."""
        raw = as_dict(cfg, "mining")
        try:
            seg, prof = raw["segmentation"], raw["profiles"]
            assoc, clf = raw["association"], raw["classifiers"]
            out = cls(
                history_splits=[str(s) for s in raw["history_splits"]],
                purchase_events=[str(s) for s in raw["purchase_events"]],
                basket_key=str(raw["basket_key"]),
                seed=int(raw["seed"]),
                n_threads=int(raw["n_threads"]),
                columns={str(k): [str(c) for c in v] for k, v in raw["columns"].items()},
                rfm_bins=int(raw["rfm"]["bins"]),
                segmentation=SegmentationConfig(
                    int(seg["k_min"]), int(seg["k_max"]),
                    [str(c) for c in seg["profile_features"]], int(seg["min_users"]),
                ),
                profiles=ProfileConfig(
                    [str(c) for c in prof["demographics"]], int(prof["top_n"]),
                    [float(q) for q in prof["spend_tiers"]],
                    float(prof["price_sensitive_below"]), float(prof["quality_focused_above"]),
                ),
                association=AssociationConfig(
                    str(assoc["algorithm"]), int(assoc["max_len"]),
                    _thresholds(assoc["item"]), _thresholds(assoc["category"]),
                ),
                classifiers=ClassifierConfig(
                    int(clf["window_days"]), float(clf["test_size"]), int(clf["min_class_count"]),
                    {str(k): dict(v or {}) for k, v in clf["models"].items()},
                ),
            )
        except KeyError as err:
            raise ConfigError(f"mining: missing key {err}") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"mining: bad value ({err})") from None
        out.check()
        return out

    def check(self) -> None:
        """Cross-field checks."""
        if self.basket_key not in BASKET_KEYS:
            raise ConfigError(f"mining.basket_key must be one of {BASKET_KEYS}, got {self.basket_key!r}")
        if self.association.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"mining.association.algorithm must be one of {ALGORITHMS}, "
                f"got {self.association.algorithm!r}"
            )
        unknown = sorted(set(self.classifiers.models) - set(MODEL_NAMES))
        if unknown or not self.classifiers.models:
            raise ConfigError(f"mining.classifiers.models: names must be among {MODEL_NAMES}, got {unknown}")
        if not 2 <= self.segmentation.k_min <= self.segmentation.k_max:
            raise ConfigError("mining.segmentation: need 2 <= k_min <= k_max")
        if self.n_threads < 1:
            raise ConfigError("mining.n_threads must be >= 1")
        if self.rfm_bins < 2:
            raise ConfigError("mining.rfm.bins must be >= 2")
        if not 0.0 < self.classifiers.test_size < 1.0:
            raise ConfigError("mining.classifiers.test_size must be in (0, 1)")
        tiers = self.profiles.spend_tiers
        if sorted(tiers) != tiers or any(not 0.0 < q < 1.0 for q in tiers):
            raise ConfigError("mining.profiles.spend_tiers must be increasing quantiles in (0, 1)")
