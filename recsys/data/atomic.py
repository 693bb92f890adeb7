"""Atomic directory writes: build in a temporary sibling, then rename over the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
