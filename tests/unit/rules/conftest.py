"""Fixtures: the tiny dataset (shared builder in tests/unit/mining), mining outputs, context,
the default rules and a hand-built candidate frame."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from module_loading import load_module

from recsys.mining import MiningConfig, run_mining
from recsys.rules import RuleContext, build_context

ROOT = Path(__file__).resolve().parents[3]


mining_world = load_module("mining_world", ROOT / "tests/unit/mining/mining_world.py")


@pytest.fixture(scope="session")
def bench_module() -> Any:
    """scripts/bench_rules.py (its synthetic context and candidates)."""
    return load_module("bench_rules", ROOT / "scripts/bench_rules.py")


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(mining_world.build_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data"))


@pytest.fixture(scope="session")
def mining_dir(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = MiningConfig.from_cfg(mining_world.compose("mine").mining)
    return run_mining(dataset_dir, tmp_path_factory.mktemp("mining") / "out", cfg).output_dir


@pytest.fixture(scope="session")
def context(dataset_dir: Path, mining_dir: Path) -> RuleContext:
    return build_context(dataset_dir, mining_dir, history_splits=["train"],
                         purchase_events=["purchase"], aliases={"category": ["category"]},
                         demand_window_days=28.0).context


@pytest.fixture()
def raw_rules() -> dict[str, Any]:
    """A fresh copy of conf/rules/default.yaml as a plain mapping."""
    return copy.deepcopy(_DEFAULT)


_DEFAULT = yaml.safe_load((ROOT / "conf/rules/default.yaml").read_text())


def make_candidates(users: list[int], items: list[int], seed: int = 0) -> pd.DataFrame:
    """Every (user, item) pair with random signals; score = their sum, rank by score."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.asarray(users, dtype=np.int64), len(items))
    i = np.tile(np.asarray(items, dtype=np.int64), len(users))
    b, im, s = rng.random(u.size), rng.random(u.size) * 0.5, rng.random(u.size) * 0.5
    frame = pd.DataFrame({"user_idx": u, "item_idx": i, "behaviour_score": b, "image_score": im,
                          "social_score": s, "score": b + im + s})
    frame["rank"] = frame.groupby("user_idx")["score"].rank(ascending=False, method="first")
    frame["rank"] = frame["rank"].astype("int64")
    return frame


@pytest.fixture()
def candidates() -> Callable[..., pd.DataFrame]:
    return make_candidates
