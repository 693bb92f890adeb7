"""``recsys.Recommender`` is exported lazily: importing recsys does not pull in torch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import recsys
from recsys.serving import Recommender


def test_lazy_recommender_export() -> None:
    assert recsys.Recommender is Recommender
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = recsys.Nope  # type: ignore[attr-defined]
    code = "import sys, recsys; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


def test_serving_imports_nothing_from_training_or_evaluation() -> None:
    """Serving reads bundles: loading every serving module (the app included) in a fresh
    process pulls in neither recsys.training nor recsys.evaluation."""
    code = ("import sys, pkgutil, importlib, recsys.serving as s\n"
            "for m in pkgutil.iter_modules(s.__path__): importlib.import_module(f'recsys.serving.{m.name}')\n"
            "print(sorted({n.split('.')[1] for n in sys.modules if n.startswith('recsys.')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = set(eval(out.stdout.strip().splitlines()[-1]))
    assert "serving" in loaded and "retrieval" in loaded and "rules" in loaded
    assert not loaded & {"training", "evaluation", "marketing"}, loaded


def test_one_meaning_of_export() -> None:
    """Exporting is writing a bundle: the only modules named export are the bundle writer and
    the recsys-export app, and retrieval converts (no export_* name)."""
    import pkgutil

    import recsys.retrieval as r

    assert not [n for n in dir(r) if "export" in n.lower()]
    named = sorted(m.name for m in pkgutil.walk_packages(recsys.__path__, "recsys.")
                   if m.name.rsplit(".", 1)[-1] == "export")
    assert named == ["recsys.cli.export", "recsys.serving.export"]
    assert importlib.util.find_spec("recsys.retrieval.trained") is not None
