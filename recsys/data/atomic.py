"""Atomic writes: directories built in a temporary sibling and files written to a temporary name,
then renamed over the target."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target``, on any
    error it is removed and ``target`` is left as it was.

    An existing ``target`` is moved aside first and deleted once the new one is in place; if the
    final rename fails, the old ``target`` is put back (unless something else took its place
    meanwhile) and the error is raised.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing ``target`` is moved aside, then deleted."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        os.replace(target, old / target.name)
        try:
            os.replace(tmp, target)
        except BaseException:
            if not target.exists():  # put the previous one back
                os.replace(old / target.name, target)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
