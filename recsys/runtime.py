"""Process-wide runtime settings (``conf/runtime``), applied once before a job starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from recsys.config import as_dict

log = logging.getLogger(__name__)
DEFAULT_FILE = Path(__file__).resolve().parent / "conf" / "runtime" / "default.yaml"
# mallopt(3) parameter numbers of glibc
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds (bytes; 0 leaves one alone). False where the C
    library is not glibc (macOS, musl) or refuses a value; nothing is changed then."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    for param, value in ((_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold)):
        if value > 0:
            ok = bool(mallopt(ctypes.c_int(param), ctypes.c_int(min(int(value), 2**31 - 1)))) and ok
    return ok


def default_runtime() -> dict[str, Any]:
    """``conf/runtime/default.yaml`` as a dict (for scripts that compose no app config)."""
    return as_dict(OmegaConf.load(DEFAULT_FILE), "runtime")


def apply_runtime(cfg: Mapping[str, Any] | None) -> None:
    """Apply a ``runtime`` config block (see ``conf/runtime/default.yaml``); None: nothing."""
    if not cfg:
        return
    mmap_t, trim_t = int(cfg.get("malloc_mmap_threshold", 0)), int(cfg.get("malloc_trim_threshold", 0))
    if (mmap_t or trim_t) and not tune_malloc(mmap_t, trim_t):
        log.info("malloc thresholds not applied (not glibc)")
