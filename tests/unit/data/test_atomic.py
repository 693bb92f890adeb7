"""Atomic directory replacement: the old target survives any failure, no temp dirs are left."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recsys.data import atomic
from recsys.data.atomic import atomic_directory
from recsys.data.synthetic.writer import WORLD_FILE, staging
from recsys.errors import DataError


def _fill(path: Path, text: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.txt").write_text(text)


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, n: int) -> list[tuple[Any, Any]]:
    """Make the ``n``-th os.replace (1-based) raise; return the calls seen."""
    calls: list[tuple[Any, Any]] = []
    real: Callable[[Any, Any], None] = os.replace

    def replace(src: Any, dst: Any) -> None:
        calls.append((src, dst))
        if len(calls) == n:
            raise OSError("simulated rename failure")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    return calls


def test_replaces_the_target(tmp_path: Path) -> None:
    _fill(tmp_path / "out", "old")
    with atomic_directory(tmp_path / "out") as tmp:
        _fill(tmp, "new")
    assert (tmp_path / "out" / "data.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_error_in_the_body_leaves_the_target(tmp_path: Path) -> None:
    _fill(tmp_path / "out", "old")
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out") as tmp:
        _fill(tmp, "new")
        raise RuntimeError("boom")
    assert (tmp_path / "out" / "data.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_final_rename_restores_the_old_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path / "out", "old")
    calls = _fail_on_call(monkeypatch, 2)  # 1: old target aside, 2: tmp into place
    with pytest.raises(OSError, match="simulated"), atomic_directory(tmp_path / "out") as tmp:
        _fill(tmp, "new")
    assert len(calls) == 3  # the third call put the old target back
    assert (tmp_path / "out" / "data.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_world_staging_wraps_a_failed_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "world"
    _fill(root, "old")
    (root / WORLD_FILE).write_text("{}")
    _fail_on_call(monkeypatch, 2)
    with pytest.raises(DataError, match="cannot publish the world"), staging(root) as tmp:
        _fill(tmp, "new")
        (tmp / WORLD_FILE).write_text("{}")
    assert (root / "data.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["world"]


def test_world_staging_accepts_a_world_published_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "world"
    real = os.replace

    def replace(src: Any, dst: Any) -> None:  # another process publishes first
        _fill(root, "theirs")
        (root / WORLD_FILE).write_text("{}")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with staging(root) as tmp:
        _fill(tmp, "ours")
    assert (root / "data.txt").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["world"]


def test_world_staging_passes_body_errors_through(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="body"), staging(tmp_path / "world"):
        raise OSError("body")
    assert list(tmp_path.iterdir()) == []
