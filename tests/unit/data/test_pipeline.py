"""The data stage end to end on a tiny CSV source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from datafixtures import make_cfg

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset


def test_builds_processed_dataset(raw_dir: Path, tmp_path: Path) -> None:
    out = build_dataset(make_cfg(raw_dir, tmp_path / "out"))
    ds = load_dataset(out)
    assert ds.n_users == 30 and ds.n_items == 20
    n = len(ds.train) + len(ds.val) + len(ds.test)
    report = json.loads((out / "quality_report.json").read_text())
    merged = report["dropped"].get("interactions", {}).get("duplicate row merged into quantity", 0)
    assert n + merged == 400
    assert ds.train["item_idx"].between(0, 19).all() and ds.train["user_idx"].between(0, 29).all()
    assert set(ds.train["channel"]) <= {"store", "online"}
    assert ds.train["positive"].all()
    items = ds.items
    assert items["cat_idx"].min() >= 1 and len(ds.vocabs["items.cat"]) == 4  # <unk> + 3 categories
    assert {"price_z", "price_mm"} <= set(items.columns)
    assert np.isclose(items["price_z"].mean(), 0, atol=1e-5) and items["price_mm"].between(0, 1).all()
    tags = ds.vocabs["items.tags"]
    row = items.index[items["tags"] == "c|a"][0]
    assert [tags[i] for i in items.loc[row, "tags_multi"]] == ["c", "a"]
    assert ds.users.loc[3, "age_missing"] and not np.isnan(ds.users.loc[3, "age"])
    assert ds.users["marketing_consent"].dtype == bool
    assert ds.users["email"].str.contains("@").sum() == 0  # coarsened to the domain
    assert ds.features["items"]["categorical"] == ["cat"] and ds.features["items"]["multi_hot"] == ["tags"]
    manifest = ds.manifest
    assert manifest["row_counts"]["items"] == 20 and len(manifest["data_fingerprint"]) == 16
    assert (out / "quality_report.md").read_text().startswith("# Data-quality report")
    first = ds.train.groupby("item_idx")["timestamp"].min()
    assert (items.set_index("item_idx").loc[first.index, "first_seen"] <= first).all()


def test_reproducible(raw_dir: Path, tmp_path: Path) -> None:
    a = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "a")))
    b = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "b")))
    assert a.manifest["data_fingerprint"] == b.manifest["data_fingerprint"]
    assert a.manifest["config_hash"] == b.manifest["config_hash"]
    pd.testing.assert_frame_equal(a.train, b.train)


def test_pseudonymised_ids_are_keyed(raw_dir: Path, tmp_path: Path) -> None:
    a = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "a")))
    b = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "b", **{"preprocess.privacy.key": "other"})))
    assert not a.users["user_id"].str.startswith("c0").any()
    assert a.users["user_id"].str.len().eq(16).all()
    assert set(a.users["user_id"]).isdisjoint(set(b.users["user_id"]))
    assert set(a.train["user_id"]) <= set(a.users["user_id"])


def test_rewrite_is_atomic(raw_dir: Path, tmp_path: Path) -> None:
    out = build_dataset(make_cfg(raw_dir, tmp_path / "out"))
    first = load_dataset(out).manifest
    assert build_dataset(make_cfg(raw_dir, tmp_path / "out", **{"split.test_days": 14})) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]  # no temp leftovers
    second = load_dataset(out).manifest
    assert second["split"]["kind"] == "temporal"
    assert second["config_hash"] != first["config_hash"]
    moved = pd.Timestamp(first["split"]["test_start"]) - pd.Timestamp(second["split"]["test_start"])
    assert moved == pd.Timedelta(days=7)  # test_days 7 -> 14


def test_pca_and_outlier_actions(raw_dir: Path, tmp_path: Path) -> None:
    inter = pd.read_csv(raw_dir / "interactions.csv", dtype=str)
    inter.loc[5, "amount"] = "4000"
    inter.to_csv(raw_dir / "interactions.csv", index=False)
    out = build_dataset(make_cfg(raw_dir, tmp_path / "o", **{"preprocess.outliers.action": "clip"}))
    ds = load_dataset(out)
    prices = pd.concat([ds.train, ds.val, ds.test])["price"]
    assert prices.max() < 4000
    out = build_dataset(make_cfg(raw_dir, tmp_path / "d", **{"preprocess.outliers.action": "drop"}))
    report = json.loads((out / "quality_report.json").read_text())
    assert report["dropped"]["interactions"]["price statistical outlier"] >= 1


def test_dropped_outlier_entities_take_their_interactions(raw_dir: Path, tmp_path: Path) -> None:
    cfg = make_cfg(raw_dir, tmp_path / "o", **{"preprocess.outliers.action": "drop",
                                               "preprocess.outliers.threshold": 0.3,
                                               "preprocess.on_unknown_ids": "quarantine"})
    ds = load_dataset(build_dataset(cfg))
    report = json.loads((ds.path / "quality_report.json").read_text())
    assert report["dropped"]["users"]["age statistical outlier"] >= 1 and ds.n_users < 30
    assert report["dropped"]["interactions"]["user_id not found in the users table"] >= 1
    for split in ("train", "val", "test"):
        assert ds.split(split)["user_idx"].between(0, ds.n_users - 1).all()
