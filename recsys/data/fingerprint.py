"""Stable hashes of configs and data, recorded in every manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def config_hash(cfg: Any) -> str:
    """SHA-256 (16 hex) of a JSON-able config, independent of key order."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def frame_fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    """Content hash of several tables (row hashes, order-sensitive)."""
    h = hashlib.sha256()
    for name in sorted(frames):
        df = frames[name]
        h.update(name.encode())
        h.update(",".join(map(str, df.columns)).encode())
        hashable = df.drop(columns=[c for c in df.columns if df[c].dtype == object
                                    and len(df) and isinstance(df[c].iloc[0], (list, tuple, np.ndarray))])
        h.update(pd.util.hash_pandas_object(hashable, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
