"""Fixtures: the rules tests' tiny dataset, mining outputs and candidate builder (loaded by path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
