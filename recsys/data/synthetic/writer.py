"""Atomic publication of a world directory, its tables and ``world.json`` (the cache key)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.atomic import atomic_directory
from recsys.errors import DataError

WORLD_FILE = "world.json"


def read_world(root: Path) -> dict[str, Any] | None:
    """The world's metadata, or None when ``root`` holds no complete world."""
    path = root / WORLD_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable world metadata: {err}", file=str(path)) from None
    return data if isinstance(data, dict) else None


def is_cached(root: Path, config_hash: str) -> bool:
    meta = read_world(root)
    return meta is not None and meta.get("config_hash") == config_hash


@contextlib.contextmanager
def staging(root: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``root``; on success it replaces ``root`` atomically
    (see :func:`~recsys.data.atomic.atomic_directory`: an older world is put back if that fails)."""
    _check_replaceable(root)
    previous = _identity(root)
    stage = "create"
    try:
        with atomic_directory(root) as tmp:
            stage = "write"
            yield tmp
            stage = "publish"
    except OSError as err:
        if stage == "create":
            raise DataError(f"cannot create the world directory: {err}", file=str(root)) from None
        if stage == "write":
            raise
        if _identity(root) == previous or not (root / WORLD_FILE).exists():
            raise DataError(f"cannot publish the world: {err}", file=str(root)) from None
        # Another process published the same root first; its world is complete.


def write_table(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False, engine="pyarrow", compression="snappy")


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a non-empty directory that is not a generated world."""
    if root.exists() and not root.is_dir():
        raise DataError("exists and is not a directory", file=str(root))
    if root.is_dir() and any(root.iterdir()) and read_world(root) is None:
        raise DataError(
            f"is not empty and holds no {WORLD_FILE}; refusing to overwrite it", file=str(root)
        )


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino
