"""Fixtures: the rules tests' tiny dataset, mining outputs and candidate builder (loaded by path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from marketing_world import SYNTH

from recsys.data.pipeline import build_dataset
from recsys.mining import MiningConfig, run_mining

ROOT = Path(__file__).resolve().parents[3]
_NAME = "rules_conftest"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, ROOT / "tests/unit/rules/conftest.py")
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])
_rules = sys.modules[_NAME]

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
