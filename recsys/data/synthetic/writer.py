"""Atomic publication of a world directory, its tables and ``world.json`` (the cache key)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

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
    """Yield a temporary directory beside ``root``; on success it replaces ``root`` atomically."""
    _check_replaceable(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    except OSError as err:
        raise DataError(f"cannot create the world directory: {err}", file=str(root)) from None
    try:
        yield tmp
        _publish(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False, engine="pyarrow", compression="snappy")


def write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a non-empty directory that is not a generated world."""
    if root.exists() and not root.is_dir():
        raise DataError("exists and is not a directory", file=str(root))
    if root.is_dir() and any(root.iterdir()) and read_world(root) is None:
        raise DataError(
            f"is not empty and holds no {WORLD_FILE}; refusing to overwrite it", file=str(root)
        )


def _publish(tmp: Path, root: Path) -> None:
    """Swap ``tmp`` in as ``root``; an older world there is moved aside and then deleted."""
    old: Path | None = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / root.name)
    try:
        os.replace(tmp, root)
    except OSError as err:
        if not root.exists() and old is not None:  # put the previous world back
            os.replace(old / root.name, root)
        if not (root / WORLD_FILE).exists():
            raise DataError(f"cannot publish the world: {err}", file=str(root)) from None
        # Another process published the same root first; its world is complete.
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
