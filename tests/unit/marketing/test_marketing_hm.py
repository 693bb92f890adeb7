"""The campaign backtest on the real H&M sample: KPIs from the real holdout purchases."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from mining_world import compose

from recsys.cli import campaign as campaign_cli
from recsys.data.pipeline import build_dataset
from recsys.mining import MiningConfig, run_mining

ROOT = Path(__file__).resolve().parents[3]
HM = Path(os.environ.get("RECSYS_HM_DIR", ROOT.parent / "shared" / "data" / "hm"))

pytestmark = [pytest.mark.hm, pytest.mark.slow,
              pytest.mark.skipif(not (HM / "transactions.csv").is_file(), reason="no H&M sample")]


def test_hm_backtest_per_segment_and_channel(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = build_dataset(compose("data", ["data=hm", f"paths.hm_dir={HM}",
                                          f"paths.output_dir={tmp_path}"]))
    mining = run_mining(data, tmp_path / "mining" / "hm",
                        MiningConfig.from_cfg(compose("mine").mining)).output_dir
    out = tmp_path / "campaign"
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", "data=hm", f"dataset_dir={data}", f"mining_dir={mining}",
        f"output_dir={out}", "backtest.n_boot=100", f"hydra.run.dir={tmp_path / 'h'}"])
    campaign_cli.main()
    kpis = json.loads((out / "kpis.json").read_text())
    test = pd.read_parquet(Path(data) / "test.parquet")
    assert pd.Timestamp(kpis["cutoff"]) == test["timestamp"].min()
    assert kpis["holdout_purchases"] == int((test["event"] == "purchase").sum()) > 0
    bt = kpis["backtest"]
    assert bt["overall"]["all"]["users"] > 0 and len(bt["segment"]) >= 2 and bt["channel"]
    # plan users who bought before the cut-off and again after it: real holdout purchases
    assert bt["overall"]["all"]["repeat_purchase_rate"]["value"] > 0
    users = pd.read_parquet(out / "user_outcomes.parquet")
    bought = set(test.loc[test["event"] == "purchase", "user_idx"])
    assert users["buyer"].sum() == users["user_idx"].isin(bought).sum() > 0
