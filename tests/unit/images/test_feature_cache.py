"""FeatureCache: persistence, append-only shards, memory maps, no half-written entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import DataError
from recsys.images.cache import FeatureCache, content_hash


def _keys(n: int, start: int = 0) -> list[str]:
    return [content_hash(f"image-{i}".encode()) for i in range(start, start + n)]


def test_put_get_roundtrip_and_persistence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 3)).astype(np.float32)
    cache = FeatureCache(tmp_path, "enc-prep", dim=3)
    assert cache.put(_keys(5), feats) == 5
    reopened = FeatureCache(tmp_path, "enc-prep", dim=3)
    assert len(reopened) == 5 and _keys(1)[0] in reopened and _keys(1, 9)[0] not in reopened
    order = [4, 0, 2]
    got = reopened.get([_keys(5)[i] for i in order])
    assert np.array_equal(got, feats[order])
    assert isinstance(reopened._shards[0], np.memmap)


def test_existing_keys_are_not_stored_twice(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "ns", dim=2)
    cache.put(_keys(3), np.ones((3, 2), np.float32))
    assert cache.put(_keys(4), np.full((4, 2), 7, np.float32)) == 1  # only the 4th is new
    assert np.array_equal(cache.get(_keys(3)), np.ones((3, 2), np.float32))
    assert np.array_equal(cache.get(_keys(1, 3)), np.full((1, 2), 7, np.float32))
    assert len(list((tmp_path / "ns").glob("*.keys.npy"))) == 2


def test_shard_without_keys_file_is_invisible(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "ns", dim=2)
    cache.put(_keys(2), np.zeros((2, 2), np.float32))
    np.save(
        tmp_path / "ns" / "99999999999999999999-deadbeef.feats.npy", np.ones((3, 2), np.float32)
    )
    assert len(FeatureCache(tmp_path, "ns", dim=2)) == 2


def test_dimension_mismatch_and_bad_shard_are_data_errors(tmp_path: Path) -> None:
    FeatureCache(tmp_path, "ns", dim=2).put(_keys(2), np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match=r"meta\.json"):
        FeatureCache(tmp_path, "ns", dim=5)
    shard = next((tmp_path / "ns").glob("*.feats.npy"))
    np.save(shard, np.zeros((3, 2), np.float32))  # row count no longer matches its keys
    with pytest.raises(DataError, match=r"feats\.npy"):
        FeatureCache(tmp_path, "ns", dim=2)


def test_put_checks_shapes(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "ns", dim=2)
    with pytest.raises(ValueError, match="do not match"):
        cache.put(_keys(2), np.zeros((3, 2), np.float32))
