"""Helpers shared by scripts/bench_*.py: timing and background samplers (GPU utilisation, RSS).

The benches run as ``python scripts/bench_x.py``, so this directory is ``sys.path[0]`` and
``from _bench_common import ...`` works without installing anything.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
S = TypeVar("S", bound="Sampler")


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` and its wall time in seconds."""
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def best_of(n: int, fn: Callable[[], T]) -> tuple[T, float]:
    """Result of the last of ``n`` runs of ``fn`` and the best wall time (the machine may be
    shared)."""
    best, out = math.inf, None
    for _ in range(n):
        out, seconds = timed(fn)
        best = min(best, seconds)
    assert out is not None
    return out, best


class Sampler:
    """Calls ``sample()`` every ``interval`` seconds in a daemon thread while used as a context
    manager; ``sample`` returns False to stop sampling early."""

    interval = 0.1

    def __init__(self, interval: float | None = None) -> None:
        if interval is not None:
            self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sample():
                return
            time.sleep(self.interval)

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class GpuUtilisation(Sampler):
    """GPU utilisation (%) samples: ``torch.cuda.utilization()``, else ``nvidia-smi``; sampling
    stops at the first failed reading (no NVML and no nvidia-smi will not start answering)."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(interval)
        self.samples: list[float] = []

    @staticmethod
    def read() -> float:
        """One reading in %, NaN when neither NVML (through torch) nor nvidia-smi answers."""
        try:
            import torch

            return float(torch.cuda.utilization())
        except Exception:  # no NVML binding: ask nvidia-smi
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=5,
                )
                return float(out.stdout.split()[0])
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return float("nan")

    def sample(self) -> bool:
        value = self.read()
        if math.isnan(value):
            return False
        self.samples.append(value)
        return True

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else float("nan")


class PeakRSS(Sampler):
    """This process's resident memory; ``peak`` is the maximum in MiB."""

    interval = 0.01

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(interval)
        self.proc = psutil.Process()
        self.peak = 0.0

    def sample(self) -> bool:
        self.peak = max(self.peak, rss_mib(self.proc))
        return True


def rss_mib(proc: psutil.Process | None = None) -> float:
    """Resident memory of ``proc`` (default this process) in MiB."""
    return (proc or psutil.Process()).memory_info().rss / 2**20
