"""Splits: no test-period interaction leaks into training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from datafixtures import make_cfg

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset


def test_temporal_split_has_no_leakage(raw_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "o")))
    assert len(ds.test) and len(ds.val)
    assert ds.train["timestamp"].max() < ds.val["timestamp"].min()
    assert ds.val["timestamp"].max() < ds.test["timestamp"].min()
    test_start = pd.Timestamp(ds.manifest["split"]["test_start"])
    assert (ds.test["timestamp"] >= test_start).all() and (ds.train["timestamp"] < test_start).all()


def test_leave_last_basket_per_user(raw_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "o", split="leave_last_basket")))
    last_train = ds.train.groupby("user_idx")["timestamp"].max()
    first_val = ds.val.groupby("user_idx")["timestamp"].min()
    first_test = ds.test.groupby("user_idx")["timestamp"].min()
    assert (last_train.reindex(first_test.index) < first_test).all()
    assert (first_val.reindex(first_test.index).dropna() < first_test.reindex(first_val.index).dropna()).all()
    assert ds.test.groupby("user_idx")["timestamp"].nunique().max() == 1  # one basket (day) per user


@pytest.mark.parametrize("split", ["random"])
def test_random_split_partitions(raw_dir: Path, tmp_path: Path, split: str) -> None:
    ds = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "o", split=split)))
    assert len(ds.train) > len(ds.test) > 0 and len(ds.val) > 0
    rows = pd.concat([ds.train, ds.val, ds.test], ignore_index=True)
    report = json.loads((ds.path / "quality_report.json").read_text())
    merged = report["dropped"].get("interactions", {}).get("duplicate row merged into quantity", 0)
    assert len(rows) + merged == 400  # every kept interaction lands in exactly one split
    assert not rows.duplicated().any()  # rows are unique after deduplication: no row is in two splits
