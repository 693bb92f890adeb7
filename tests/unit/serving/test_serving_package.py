"""``recsys.Recommender`` is exported lazily: importing recsys does not pull in torch."""

from __future__ import annotations

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
