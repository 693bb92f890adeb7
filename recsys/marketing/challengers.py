"""Champion / challenger tests of rule changes inside the adjustment loop.

A *move* is a named set of edits of the rules mapping (``path``: dot-separated keys, list
entries picked by their ``name``; ``value``). From round ``first_round`` on, each round tests
``per_round`` moves: every challenger is the champion rules with one move applied and plans for
a random ``share`` of the users; the champion plans for the rest. Each arm gets its users' share
of every channel budget and of the campaign budget, so the arms together stay within the
champion's budgets. Arms are drawn at random, so the difference of the contacted users' mean
revenue minus cost (challenger arm - champion arm, Welch standard error) estimates what the move
does to that figure.

Evidence is pooled over the rounds a move was tested in (precision-weighted). A move whose pooled
difference exceeds ``z`` pooled standard errors is adopted: its edits join the champion rules for
the next round. Which moves are tested is Thompson sampling: each open move draws a value from
its evidence (normal, mean and standard error pooled; ``prior_sd`` around 0 when untested) and
the ``per_round`` largest positive draws are tested, so untested and promising moves get users
and moves shown to lose stop getting them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import ConfigError, RecsysError
from recsys.rules.config import parse_rules

CHAMPION = "champion"


@dataclass(frozen=True)
class Move:
    """A named set of rules edits (path, value)."""

    name: str
    edits: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ChallengeConfig:
    """loop.yaml ``challengers``."""

    moves: tuple[Move, ...]
    per_round: int
    share: float
    z: float
    first_round: int = 2
    prior_sd: float = 1.0

    def __post_init__(self) -> None:
        if self.per_round < 0 or self.share <= 0.0 or self.per_round * self.share >= 1.0:
            raise ConfigError("loop.challengers needs per_round >= 0, share > 0 and "
                              f"per_round * share < 1, got {self.per_round} x {self.share}")
        if self.first_round < 2:
            raise ConfigError("loop.challengers.first_round must be >= 2 (round 1 is the "
                              f"default campaign), got {self.first_round}")
        names = [m.name for m in self.moves]
        if len(set(names)) != len(names) or CHAMPION in names:
            raise ConfigError("loop.challengers.moves: names must be unique and not "
                              f"{CHAMPION!r}")


def no_challengers() -> ChallengeConfig:
    """Every round plans with the champion rules alone."""
    return ChallengeConfig((), 0, 0.1, 1.0)


def challenge_config(raw: Mapping[str, Any] | None) -> ChallengeConfig:
    """The ``challengers`` node (None: no challengers) as a ChallengeConfig."""
    if not raw:
        return no_challengers()
    try:
        moves = tuple(Move(str(m["name"]), tuple((str(e["path"]), e["value"]) for e in m["set"]))
                      for m in raw.get("moves") or [])
        return ChallengeConfig(moves, int(raw["per_round"]), float(raw["share"]),
                               float(raw["z"]), int(raw.get("first_round", 2)),
                               float(raw.get("prior_sd", 1.0)))
    except (KeyError, TypeError) as err:
        raise ConfigError(f"loop.challengers: missing or bad key {err}") from None


def _parent(raw: dict[str, Any], path: str) -> tuple[Any, str]:
    """The container holding the last key of ``path``; KeyError when a step does not exist."""
    node: Any = raw
    keys = path.split(".")
    for key in keys[:-1]:
        if isinstance(node, list):
            node = next(x for x in node if isinstance(x, Mapping) and x.get("name") == key)
        else:
            node = node[key]
    return node, keys[-1]


def apply_move(raw: Mapping[str, Any], move: Move) -> dict[str, Any] | None:
    """A copy of ``raw`` with the move's edits (existing keys only), or None when a path does not
    exist there (e.g. a rule an earlier move removed) or the move changes nothing."""
    out = copy.deepcopy(dict(raw))
    try:
        for path, value in move.edits:
            parent, key = _parent(out, path)
            if not isinstance(parent, dict) or key not in parent:
                return None
            parent[key] = copy.deepcopy(value)
    except (KeyError, StopIteration, TypeError):
        return None
    return None if out == dict(raw) else out


def check_moves(cfg: ChallengeConfig, raw: Mapping[str, Any]) -> None:
    """Every move must edit existing keys of the starting rules and give valid rules (ConfigError
    naming the move otherwise): a misspelt path would else never be tested."""
    for i, move in enumerate(cfg.moves):
        where = f"loop.challengers.moves[{i}] {move.name!r}"
        for path, value in move.edits:
            probe = apply_move(raw, Move(move.name, ((path, value),)))
            try:
                parent, key = _parent(dict(raw), path)
                exists = isinstance(parent, dict) and key in parent
            except (KeyError, StopIteration, TypeError):
                exists = False
            if not exists:
                raise ConfigError(f"{where}: path {path!r} is not in the rules")
            if probe is not None:
                try:
                    parse_rules(probe, None)
                except RecsysError as err:
                    raise ConfigError(f"{where}: gives invalid rules ({err})") from None


def scale_budgets(raw: Mapping[str, Any], share: float) -> dict[str, Any]:
    """A copy of ``raw`` whose channel budgets and campaign budget are ``share`` of its own."""
    out = copy.deepcopy(dict(raw))
    for opt in out["channels"]["options"].values():
        opt["budget"] = float(opt["budget"]) * share
    if out.get("caps", {}).get("campaign_budget") is not None:
        out["caps"]["campaign_budget"] = float(out["caps"]["campaign_budget"]) * share
    return out


def draw_arms(users: np.ndarray, arms: Sequence[str], share: float,
              rng: np.random.Generator) -> pd.Series:
    """Arm of each user: each challenger with probability ``share``, else the champion
    (``arms[0]``)."""
    k = len(arms) - 1
    probs = np.array([1.0 - k * share] + [share] * k)
    pick = rng.choice(len(arms), size=len(users), p=probs)
    return pd.Series(np.asarray(arms, dtype=object)[pick], index=users, name="arm")


def pooled(tests: pd.DataFrame, move: str) -> tuple[float, float]:
    """Precision-weighted mean difference of ``move`` over its tests and its standard error
    (nan, inf when untested)."""
    t = tests[tests["move"] == move] if len(tests) else tests
    if t.empty:
        return float("nan"), float("inf")
    w = 1.0 / np.square(t["se"].to_numpy(float))
    return float((w * t["difference"].to_numpy(float)).sum() / w.sum()), float(1.0 / np.sqrt(w.sum()))


def choose_moves(cfg: ChallengeConfig, raw: Mapping[str, Any], tests: pd.DataFrame,
                 closed: set[str], rng: np.random.Generator) -> list[Move]:
    """Thompson sampling: the ``per_round`` open moves (not adopted, changing ``raw``) with the
    largest positive draws from their pooled evidence."""
    draws = []
    for m in cfg.moves:
        if m.name in closed or apply_move(raw, m) is None:
            continue
        mean, se = pooled(tests, m.name)
        value = rng.normal(0.0, cfg.prior_sd) if not np.isfinite(mean) else rng.normal(mean, se)
        if value > 0:
            draws.append((value, m))
    draws.sort(key=lambda x: -x[0])
    return [m for _, m in draws[: cfg.per_round]]


def compare_arms(log: pd.DataFrame, z: float) -> pd.DataFrame:
    """Per challenger arm: contacted users of both arms, mean revenue - cost of each, the
    difference, its standard error, and whether it beats the champion by ``z`` standard errors
    in this round alone; the same difference under the world's model (``expected_*`` columns,
    for the report)."""
    t = log[log["sent"] > 0]
    net = t["revenue"] - t["cost"]
    exp = t["expected_revenue"] - t["expected_cost"]
    inc = exp - t["expected_revenue_control"]
    base = t["arm"] == CHAMPION
    rows = []
    for arm in sorted(set(t["arm"]) - {CHAMPION}):
        a = t["arm"] == arm
        n_a, n_b = int(a.sum()), int(base.sum())
        if n_a < 2 or n_b < 2:
            continue
        diff = float(net[a].mean() - net[base].mean())
        se = float(np.sqrt(net[a].var(ddof=1) / n_a + net[base].var(ddof=1) / n_b))
        rows.append({"move": arm, "challenger_users": n_a, "champion_users": n_b,
                     "challenger_profit": float(net[a].mean()),
                     "champion_profit": float(net[base].mean()), "difference": diff, "se": se,
                     "beats_alone": bool(diff > z * se),
                     "expected_difference": float(exp[a].mean() - exp[base].mean()),
                     "expected_incremental_difference": float(inc[a].mean() - inc[base].mean())})
    return pd.DataFrame(rows)
