"""Index settings from ``conf/index/*.yaml``: a FAISS factory template and its parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import ConfigError
from recsys.retrieval.faiss_device import check_device

MIN_POINTS_PER_CENTROID = 39
PQ_TRAIN_POINTS = 256
REQUIRED = ("name", "factory", "train_size", "recall_k", "recall_queries", "seed")
OPTIONAL = ("metric", "nlist", "pq_m", "build_params", "search_params", "tune", "device", "fallback")
CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "index"


@dataclass(frozen=True)
class IndexSpec:
    """How to build and search one index (values come from ``conf/index/*.yaml``).

    ``factory`` is a FAISS factory string that may name ``{nlist}`` and ``{pq_m}``; ``nlist`` and
    ``pq_m`` are integers or ``"auto"`` (``4 * sqrt(n)`` lists, at least 39 training points per
    list; ``d / 2`` sub-quantisers). ``search_params`` go through ``faiss.ParameterSpace``;
    ``tune_param`` is raised through ``tune_values`` until ANN recall reaches ``target_recall``.
    ``device`` (``cpu`` | ``cuda``) is where the built index searches; ``fallback`` lets
    ``cuda`` fall back to the CPU when FAISS has no GPU (see :mod:`recsys.retrieval.faiss_device`).
    """

    name: str
    factory: str
    metric: str | None
    nlist: int | str | None
    pq_m: int | str | None
    train_size: int
    build_params: Mapping[str, float]
    search_params: Mapping[str, float]
    tune_param: str | None
    tune_values: tuple[float, ...]
    target_recall: float | None
    recall_k: int
    recall_queries: int
    seed: int
    device: str = "cpu"
    fallback: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> IndexSpec:
        """Build from a plain mapping (an ``index`` config node converted to a dict).

        ``name``, ``factory``, ``train_size``, ``recall_k``, ``recall_queries`` and ``seed`` are
        required; ``metric`` (auto), ``nlist``, ``pq_m``, ``build_params``, ``search_params`` and
        ``tune`` may be left out when the index does not use them.
        """
        unknown = set(cfg) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            raise ConfigError(f"index: unknown keys {sorted(unknown)}")
        missing = [k for k in REQUIRED if k not in cfg]
        if missing:
            raise ConfigError(f"index: missing keys {missing}")
        tune = cfg.get("tune") or {}
        return cls(
            name=str(cfg["name"]),
            factory=str(cfg["factory"]),
            metric=cfg.get("metric"),
            nlist=cfg.get("nlist"),
            pq_m=cfg.get("pq_m"),
            train_size=int(cfg["train_size"]),
            build_params=dict(cfg.get("build_params") or {}),
            search_params=dict(cfg.get("search_params") or {}),
            tune_param=tune.get("param"),
            tune_values=tuple(tune.get("values") or ()),
            target_recall=tune.get("target_recall"),
            recall_k=int(cfg["recall_k"]),
            recall_queries=int(cfg["recall_queries"]),
            seed=int(cfg["seed"]),
            device=check_device(cfg.get("device", "cpu")),
            fallback=_flag(cfg.get("fallback", False), "index.fallback"),
        )

    @property
    def tuned(self) -> bool:
        """Whether a search parameter is raised until ANN recall reaches a target."""
        return bool(self.tune_param) and self.target_recall is not None

    def resolve_nlist(self, n: int) -> int:
        """Number of inverted lists for ``n`` vectors."""
        if self.nlist in (None, "auto"):
            by_size = round(4 * math.sqrt(n))
            return max(1, min(by_size, n // MIN_POINTS_PER_CENTROID))
        if not isinstance(self.nlist, int) or self.nlist < 1:
            raise ConfigError(f"index.nlist must be a positive integer or 'auto', got {self.nlist!r}")
        if self.nlist > n:
            raise ConfigError(f"index.nlist={self.nlist} exceeds the {n} vectors to index")
        return self.nlist

    def resolve_pq_m(self, d: int) -> int:
        """Number of PQ sub-quantisers for dimension ``d``."""
        m = (d // 2 if d % 2 == 0 else d) if self.pq_m in (None, "auto") else self.pq_m
        if not isinstance(m, int) or m < 1 or d % m:
            raise ConfigError(f"index.pq_m={self.pq_m!r} must divide the dimension {d}")
        return m

    def resolve_factory(self, n: int, d: int) -> str:
        """The factory string with ``{nlist}`` / ``{pq_m}`` filled in for ``n`` x ``d`` vectors."""
        values: dict[str, int] = {}
        if "{nlist}" in self.factory:
            values["nlist"] = self.resolve_nlist(n)
        if "{pq_m}" in self.factory:
            values["pq_m"] = self.resolve_pq_m(d)
            if n < PQ_TRAIN_POINTS:
                raise ConfigError(
                    f"index {self.name!r} needs at least {PQ_TRAIN_POINTS} vectors to train its "
                    f"product quantiser, got {n}"
                )
        try:
            return self.factory.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"index.factory {self.factory!r}: unknown placeholder {err}") from None


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}", column=key)
    return value


def load_spec(config: str, /, **overrides: Any) -> IndexSpec:
    """The spec of ``conf/index/<config>.yaml`` with ``overrides`` (benchmarks, tests)."""
    from omegaconf import OmegaConf

    path = CONF_DIR / f"{config}.yaml"
    if not path.is_file():
        raise ConfigError(f"no index config {config!r}", file=str(path))
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(cfg, dict):
        raise ConfigError("index config is not a mapping", file=str(path))
    return IndexSpec.from_config({**{str(k): v for k, v in cfg.items()}, **overrides})
