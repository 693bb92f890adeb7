"""Determinism, the world.json cache and atomic publication of synthetic worlds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from synthfixtures import tiny_config

import recsys.data.synthetic.world as world_module
from recsys.data.synthetic import generate
from recsys.errors import DataError


def small_config(**overrides: Any) -> dict[str, Any]:
    return tiny_config(**{"n_users": 120, "n_items": 60, "users.max_images": 2, **overrides})


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "world.json"
    }


def test_same_config_gives_identical_files_with_or_without_a_pool(tmp_path: Path) -> None:
    a = generate(small_config(), tmp_path / "a")
    b = generate(small_config(image_workers=2, parallel_min_images=0), tmp_path / "b")
    fa, fb = _files(a), _files(b)
    assert len(fa) > 100 and fa.keys() == fb.keys()
    assert all(fa[k] == fb[k] for k in fa)
    c = generate(small_config(seed=7, images=False), tmp_path / "c")
    assert _files(c)["interactions.parquet"] != fa["interactions.parquet"]


def test_second_call_is_a_cache_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate(small_config(images=False), tmp_path / "w")
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    def no_rebuild(*_: Any) -> None:
        raise AssertionError("the world was rebuilt")

    monkeypatch.setattr(world_module, "build_world", no_rebuild)
    assert generate(small_config(images=False, image_workers=3), root) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps


def test_changed_config_replaces_the_world_atomically(tmp_path: Path) -> None:
    root = tmp_path / "w"
    generate(small_config(images=False), root)
    old_hash = json.loads((root / "world.json").read_text())["config_hash"]
    generate(small_config(images=False, n_users=80), root)
    meta = json.loads((root / "world.json").read_text())
    assert meta["config_hash"] != old_hash and meta["row_counts"]["users"] == 80
    assert len(pd.read_parquet(root / "users.parquet")) == 80
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no temp dirs left


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(world_module, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        generate(small_config(images=False), tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"mine.*refusing to overwrite"):
        generate(small_config(images=False), root)
    assert (root / "notes.txt").read_text() == "keep me"


def test_images_off_changes_only_the_image_columns(tmp_path: Path) -> None:
    on = generate(small_config(), tmp_path / "on")
    off = generate(small_config(images=False), tmp_path / "off")
    assert not (off / "images").exists()
    items = pd.read_parquet(off / "items.parquet")
    assert items["image_path"].isna().all()
    assert len(pd.read_parquet(off / "user_images.parquet")) == 0
    for name in ("interactions.parquet", "users.parquet"):
        assert (on / name).read_bytes() == (off / name).read_bytes()
    pd.testing.assert_frame_equal(
        items.drop(columns="image_path"),
        pd.read_parquet(on / "items.parquet").drop(columns="image_path"),
    )


def test_the_order_of_named_options_is_part_of_the_hash(tmp_path: Path) -> None:
    """Options are drawn by position: the same colours listed in another order make another
    world, so its hash differs and the cached world is rebuilt."""
    from recsys.data.synthetic.parse import config_hash, parse_config

    cfg = small_config(images=False)
    swapped = {**cfg, "items": {**cfg["items"],
                                "colours": dict(reversed(list(cfg["items"]["colours"].items())))}}
    assert config_hash(parse_config(swapped)) != config_hash(parse_config(cfg))
    root = generate(cfg, tmp_path / "w")
    before = pd.read_parquet(root / "items.parquet")["colour"]
    generate(swapped, root)
    assert not pd.read_parquet(root / "items.parquet")["colour"].equals(before)
