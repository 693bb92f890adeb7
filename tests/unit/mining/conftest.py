"""Fixtures: the tiny processed dataset, the mining config and a mining directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from mining_world import build_tiny_dataset, compose

from recsys.mining import MiningConfig, MiningSummary, run_mining


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def mining_cfg() -> MiningConfig:
    return MiningConfig.from_cfg(compose("mine").mining)


@pytest.fixture(scope="session")
def mined(tiny_dataset: Path, mining_cfg: MiningConfig,
          tmp_path_factory: pytest.TempPathFactory) -> MiningSummary:
    return run_mining(tiny_dataset, tmp_path_factory.mktemp("mining") / "out", mining_cfg)
