"""What the service serves from, and its atomic swap on reload.

A :class:`Served` is one verified bundle with its rules context. :class:`ServingState` holds
the current one; a request takes a reference at its start and finishes on it, so a reload (a
new :class:`Served` built aside, then one reference assignment under a lock) never changes a
request in flight. A bundle that fails to load (missing, corrupt, incompatible version, or older
than the one served) is refused and the old one keeps serving.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import BundleError, RecsysError
from recsys.serving.online_rules import OnlineRules
from recsys.serving.recommender import Recommender

log = logging.getLogger(__name__)
Loader = Callable[[Path], "Served"]


@dataclass(frozen=True)
class Served:
    """A loaded bundle (``recommender``) with its rules (None: rules off) and where it came
    from (``source``: the configured path, ``resolved``: the directory it pointed to)."""

    recommender: Recommender
    rules: OnlineRules | None
    source: Path
    resolved: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return self.recommender.manifest

    @property
    def version(self) -> str:
        """The bundle's identity: its creation time and config hash."""
        m = self.manifest
        return f"{m.get('created_at', '?')}/{m.get('config_hash', '?')}"


class ServingState:
    """The current :class:`Served`, swapped atomically by :meth:`reload`."""

    def __init__(self, loader: Loader, source: Path) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self.source = Path(source)
        self._current: Served | None = None
        self._identity: tuple[str, int] | None = None
        self.on_change: list[Callable[[Served], None]] = []  # after each swap
        self.on_reload: list[Callable[[str], None]] = []  # "ok" / "refused" per reload

    @property
    def current(self) -> Served:
        served = self._current
        if served is None:
            raise BundleError("no bundle is loaded", file=str(self.source))
        return served

    @property
    def ready(self) -> bool:
        return self._current is not None

    def reload(self, path: Path | None = None, allow_older: bool = False) -> Served:
        """Load ``path`` (default: the configured source) and swap it in; a BundleError (the
        old bundle keeps serving) when it cannot be loaded or, unless ``allow_older`` (a
        deliberate rollback), is older than the one served."""
        source = Path(path) if path is not None else self.source
        with self._lock:
            try:
                identity = _identity(source)
                served = self._loader(source)
                old = self._current
                if old is not None and not allow_older and _created(served) < _created(old):
                    raise BundleError(
                        f"bundle created {served.manifest.get('created_at')} is older than the "
                        f"one served ({old.manifest.get('created_at')}); allow_older=true rolls back",
                        file=str(source),
                        column="created_at")
            except RecsysError:
                self._notify("refused")
                raise
            self._current = served
            if source == self.source:
                self._identity = identity
            self._notify("ok")
        log.info("serving bundle %s (%s)", served.resolved, served.version)
        for callback in self.on_change:
            callback(served)
        return served

    def _notify(self, outcome: str) -> None:
        for callback in self.on_reload:
            callback(outcome)

    def changed(self) -> bool:
        """Whether the configured source now is another directory than the one loaded from it:
        a ``current`` link moved to a new bundle, or the directory replaced (e.g. rewritten
        atomically by an erasure)."""
        return self._identity is not None and _identity(self.source) != self._identity


def settle_memory(_: Served | None = None) -> None:
    """Collect what a swap left (the old bundle's cycles) and freeze the rest: the bundle's
    few hundred thousand long-lived objects (ids, tables, lookups) leave the cyclic collector's
    full passes, each of which would otherwise stop every request for tens of milliseconds (a
    service registers it in ``on_change``; a full pass costs up to a second in a big process)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _identity(source: Path) -> tuple[str, int]:
    """Where ``source`` leads and that directory's inode (-1 when it does not exist)."""
    target = os.path.realpath(source)
    try:
        return target, os.stat(target).st_ino
    except OSError:
        return target, -1


def _created(served: Served) -> str:
    return str(served.manifest.get("created_at", ""))


def watch(state: ServingState, every: float, stop: threading.Event) -> threading.Thread:
    """A daemon thread reloading ``state`` whenever its source link changes (every
    ``every`` seconds); a refused bundle is logged and retried only after the link moves again."""
    def loop() -> None:
        refused: str | None = None
        while not stop.wait(every):
            target = str(_identity(state.source))
            if not state.changed() or target == refused:
                continue
            try:
                state.reload()
                refused = None
            except RecsysError as err:
                refused = target
                log.warning("bundle link %s -> %s refused: %s", state.source, target, err)

    thread = threading.Thread(target=loop, name="bundle-watch", daemon=True)
    thread.start()
    return thread
