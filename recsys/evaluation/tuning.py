"""Tune one method in process over its ``hparams_search/<name>.yaml``: the same search space,
trial budget and seeded TPE sampler as ``recsys-evaluate -m +hparams_search=<name>`` (the
Optuna sweeper for Hydra), for scripts that tune several methods in one run.

The sweep's ``hydra.sweeper.params`` (``interval(a, b)``, ``tag(log, interval(a, b))``,
``choice(...)``, ``range(a, b, step)``) are parsed by Hydra's override grammar and turned into
Optuna distributions by the sweeper plugin's own converter, so both ask for the same values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recsys.errors import ConfigError

Objective = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class SearchSpace:
    """Distributions and fixed values of one method's settings, keyed by setting name."""

    method: str
    distributions: dict[str, Any]
    fixed: dict[str, Any]
    n_trials: int
    seed: int | None
    direction: str


@dataclass
class TuningResult:
    """The best setting found, its validation value, and every trial."""

    best: dict[str, Any]
    value: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def search_space(sweeper: Mapping[str, Any] | DictConfig, method: str, source: str = ""
                 ) -> SearchSpace:
    """The :class:`SearchSpace` of a composed ``hydra.sweeper`` node whose params all target
    ``eval.methods.<method>.<setting>``."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    node = OmegaConf.to_container(sweeper, resolve=True) if isinstance(sweeper, DictConfig) \
        else dict(sweeper)
    assert isinstance(node, dict)
    params: dict[str, Any] = dict(node.get("params") or {})
    prefix = f"eval.methods.{method}."
    wrong = [key for key in params if not key.startswith(prefix)]
    if not params or wrong:
        raise ConfigError(f"hparams_search {source or method}: every hydra.sweeper.params key must "
                          f"start with {prefix!r}, got {wrong or 'none'}", column="params")
    dists, fixed = create_params_from_overrides([f"{k}={v}" for k, v in params.items()])
    sampler = node.get("sampler") or {}
    return SearchSpace(
        method=method,
        distributions={key[len(prefix):]: d for key, d in dists.items()},
        fixed={key[len(prefix):]: v for key, v in fixed.items()},
        n_trials=int(node["n_trials"]),
        seed=sampler.get("seed"),
        direction=str(node.get("direction", "maximize")),
    )


def tune(space: SearchSpace, objective: Objective) -> TuningResult:
    """Run ``space.n_trials`` trials of seeded TPE; ``objective(settings)`` scores one setting
    (the method's settings that the search space sets) on validation."""
    import optuna

    start = time.perf_counter()
    sampler = optuna.samplers.TPESampler(seed=space.seed)
    study = optuna.create_study(direction=space.direction, sampler=sampler)
    trials = []
    for _ in range(space.n_trials):
        trial = study.ask(dict(space.distributions))
        settings = {**space.fixed, **trial.params}
        value = float(objective(settings))
        study.tell(trial, value)
        trials.append({"trial": trial.number, "value": value, **settings})
    best = {**space.fixed, **study.best_params}
    return TuningResult(best, float(study.best_value), trials, time.perf_counter() - start)
