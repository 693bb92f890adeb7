"""The real H&M sample through the `hm` column mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset

ROOT = Path(__file__).resolve().parents[3]
HM = Path(__import__("os").environ.get("RECSYS_HM_DIR", ROOT.parent / "shared" / "data" / "hm"))

pytestmark = [pytest.mark.hm, pytest.mark.skipif(not (HM / "transactions.csv").is_file(), reason="no H&M sample")]


def test_hm_leave_last_day(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "recsys" / "conf"), version_base="1.3"):
        cfg = compose("data", overrides=["data=hm", "split=leave_last_day", f"paths.hm_dir={HM}",
                                         f"paths.output_dir={tmp_path}"])
    ds = load_dataset(build_dataset(cfg))
    assert ds.n_items == 17_033 and ds.n_users == 1_364
    assert ds.items["item_id"].str.len().eq(10).all()  # leading zeros kept
    assert (ds.image_root / ds.items["image_path"].iloc[0]).is_file()
    report = json.loads((ds.path / "quality_report.json").read_text())
    merged = report["dropped"]["interactions"]["duplicate row merged into quantity"]
    total = len(ds.train) + len(ds.val) + len(ds.test)
    assert total + merged == 31_662
    assert ds.train["quantity"].sum() + ds.val["quantity"].sum() + ds.test["quantity"].sum() == 31_662
    # leave-last-day: each held-out user's test day is after all of their training days
    last = ds.train.groupby("user_idx")["timestamp"].max()
    test_day = ds.test.groupby("user_idx")["timestamp"].min()
    assert (last.reindex(test_day.index) < test_day).all()
    cold = ~ds.test["item_idx"].isin(ds.train["item_idx"])
    assert 0.3 < cold.mean() < 0.7  # about half of test purchases are of items unseen in training
    assert "postal_code" not in ds.users.columns and ds.users["marketing_consent"].any()
