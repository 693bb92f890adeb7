"""Fixtures: the rules tests' tiny dataset, mining outputs and candidate builder (loaded by path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from marketing_world import SYNTH
from module_loading import load_module

from recsys.data.pipeline import build_dataset
from recsys.mining import MiningConfig, run_mining

ROOT = Path(__file__).resolve().parents[3]
_rules = load_module("rules_conftest", ROOT / "tests/unit/rules/conftest.py")

dataset_dir = _rules.dataset_dir
mining_dir = _rules.mining_dir
candidates = _rules.candidates
raw_rules = _rules.raw_rules


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic world, its processed dataset and mining outputs under one output root
    (outputs/raw/synthetic, outputs/data/synthetic, outputs/mining/synthetic)."""
    out = tmp_path_factory.mktemp("synth")
    data = build_dataset(_rules.mining_world.compose("data", [*SYNTH, f"paths.output_dir={out}"]))
    run_mining(data, out / "mining" / "synthetic",
               MiningConfig.from_cfg(_rules.mining_world.compose("mine").mining))
    return out
