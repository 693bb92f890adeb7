"""Fixtures of the image tests (helpers live in imagefixtures.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from imagefixtures import build_dataset, write_photo


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    """``images/`` with six good JPEGs p0..p5."""
    root = tmp_path / "images"
    for i in range(6):
        write_photo(root / "items" / f"p{i}.jpg", seed=i)
    return root


@pytest.fixture()
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Build a processed dataset directory exactly as the data contract describes."""
    return lambda name="tiny": build_dataset(tmp_path, name)
