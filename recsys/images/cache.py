"""On-disk image feature cache: content hash -> float32 feature row, one namespace per
(encoder weights digest, preprocessing digest).

Layout: ``<root>/<namespace>/meta.json`` plus append-only shards ``<stamp>.feats.npy``
(float32 ``[n, dim]``) and ``<stamp>.keys.npy`` (``S64`` hex SHA-256). Each file is written to a
temporary name and renamed; the keys file is written last and marks a shard complete, so a crash
never leaves a half shard visible. Shards are memory-mapped on read. Only successfully encoded
images are ever stored: a failed image has no key in the cache.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.data.atomic import save_npy_atomic, write_json_atomic
from recsys.errors import DataError

KEY_DTYPE = "S64"


def content_hash(data: bytes) -> str:
    """Hex SHA-256 of an image file's bytes: the cache key."""
    return hashlib.sha256(data).hexdigest()


class FeatureCache:
    """Append-only feature store for one encoder + preprocessing namespace."""

    def __init__(
        self, root: Path, namespace: str, dim: int, meta: dict[str, Any] | None = None
    ) -> None:
        self.dir = Path(root) / namespace
        self.dim = dim
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / "meta.json"
        if meta_path.is_file():
            stored = json.loads(meta_path.read_text())
            if int(stored.get("dim", -1)) != dim:
                raise DataError(
                    f"cache holds dim {stored.get('dim')}, encoder gives {dim}", file=str(meta_path)
                )
        else:
            write_json_atomic(meta_path, {"namespace": namespace, "dim": dim, **(meta or {})})
        self._shards: list[np.ndarray] = []
        self._index: dict[bytes, tuple[int, int]] = {}
        self.refresh()

    def refresh(self) -> None:
        """(Re)read the shard list; later shards never override an existing key."""
        self._shards, self._index = [], {}
        for keys_path in sorted(self.dir.glob("*.keys.npy")):
            feats_path = keys_path.with_name(keys_path.name.replace(".keys.", ".feats."))
            try:
                keys = np.load(keys_path, allow_pickle=False)
                feats = np.load(feats_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise DataError(f"unreadable cache shard: {err}", file=str(keys_path)) from None
            if feats.ndim != 2 or feats.shape != (len(keys), self.dim):
                raise DataError(
                    f"cache shard shape {feats.shape} does not match {len(keys)} keys x {self.dim}",
                    file=str(feats_path),
                )
            shard = len(self._shards)
            self._shards.append(feats)
            for row, key in enumerate(keys.tolist()):
                self._index.setdefault(key, (shard, row))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key.encode() in self._index

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """Features ``[len(keys), dim]`` (float32) of keys that are all present."""
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for i, key in enumerate(keys):
            shard, row = self._index[key.encode()]
            dst, src = by_shard.setdefault(shard, ([], []))
            dst.append(i)
            src.append(row)
        for shard, (dst, src) in by_shard.items():
            out[dst] = self._shards[shard][src]
        return out

    def put(self, keys: Sequence[str], features: np.ndarray) -> int:
        """Append the features of keys not yet stored as one new shard; return rows written."""
        if features.shape != (len(keys), self.dim):
            raise ValueError(f"features {features.shape} do not match {len(keys)} x {self.dim}")
        fresh: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            k = key.encode()
            if k not in self._index and k not in fresh:
                fresh[k] = i
        if not fresh:
            return 0
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        rows = np.ascontiguousarray(features[list(fresh.values())], dtype=np.float32)
        save_npy_atomic(self.dir / f"{stamp}.feats.npy", rows)
        save_npy_atomic(self.dir / f"{stamp}.keys.npy", np.array(list(fresh), dtype=KEY_DTYPE))
        shard = len(self._shards)
        self._shards.append(np.load(self.dir / f"{stamp}.feats.npy", mmap_mode="r"))
        for row, k in enumerate(fresh):
            self._index[k] = (shard, row)
        return len(fresh)
