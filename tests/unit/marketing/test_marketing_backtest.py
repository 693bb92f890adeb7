"""Backtest KPIs: a hand-computed small case, bootstrap intervals, cut-offs, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.cli import campaign as campaign_cli
from recsys.marketing.backtest import kpi_table, user_outcomes
from recsys.marketing.bootstrap import bootstrap_ci

CUT = pd.Timestamp("2024-05-01")


def _small() -> pd.DataFrame:
    plan = pd.DataFrame({
        "user_idx": [0, 0, 1, 2, 2], "item_idx": [1, 2, 3, 1, 4],
        "channel": ["email", "email", "none", "sms", "sms"],
        "promotion": ["coupon", "coupon", "none", "none", "none"],
        "promotion_depth": [0.1, 0.1, 0.0, 0.0, 0.0],
        "promotion_fixed_cost": [0.5, 0.5, 0.0, 0.0, 0.0],
        "segment": ["a", "a", "b", "a", "a"],
    })
    day = pd.Timedelta(days=1)
    hold = pd.DataFrame({"user_idx": [0, 0, 2, 2], "item_idx": [1, 5, 4, 4],
                         "timestamp": [CUT + day] * 4, "amount": [10.0, 7.0, 20.0, 20.0],
                         "order": [1, 1, 2, 2]})
    hist = pd.DataFrame({"user_idx": [0, 2], "item_idx": [9, 9],
                         "timestamp": [CUT - 3 * day, CUT - 60 * day], "amount": [1.0, 1.0],
                         "order": [0, 0]})
    return user_outcomes(plan, hold, hist, {"email": 0.002, "sms": 0.05}, CUT, 28.0)


def test_user_outcomes_and_kpis_match_a_hand_computed_case() -> None:
    u = _small().set_index("user_idx")
    assert u["hits"].tolist() == [1, 0, 1] and u["hit_revenue"].tolist() == [10.0, 0.0, 40.0]
    assert u["hit_orders"].tolist() == [1, 0, 1] and u["buyer"].tolist() == [1, 0, 1]
    assert u["prior"].tolist() == [1, 0, 1] and u["recent"].tolist() == [1, 0, 0]
    assert u["cost"].to_numpy() == pytest.approx([0.002 + 0.1 * 10 + 0.5, 0.0, 0.05])
    table = kpi_table(_small(), ["segment", "channel"], n_boot=50, level=0.9, seed=0)
    got = table[table["group_by"] == "overall"].set_index("kpi")["value"]
    cost = 1.502 + 0.05
    want = {"reach": 2 / 3, "hit_rate": 2 / 5, "conversion_rate": 2 / 3, "revenue": 50.0,
            "revenue_per_user": 50 / 3, "aov": 25.0, "repeat_purchase_rate": 1.0,
            "retention_rate": 1.0, "cost": cost, "roi": (50 - cost) / cost}
    for kpi, value in want.items():
        assert got[kpi] == pytest.approx(value), kpi
    seg_b = table[(table["group_by"] == "segment") & (table["group"] == "b")].set_index("kpi")
    assert seg_b.loc["reach", "value"] == 0.0 and seg_b.loc["revenue", "value"] == 0.0
    sms = table[(table["group"] == "sms")].set_index("kpi")
    assert sms.loc["aov", "value"] == 40.0 and sms.loc["hit_rate", "value"] == 0.5
    assert (table["ci_low"] <= table["value"] + 1e-12).all() | table["value"].isna().any()


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (200, 5000):
        x = (rng.random(n) < 0.3).astype(float)
        est, lo, hi = bootstrap_ci({"m": (x, np.ones(n))}, 400, 0.95, rng)["m"]
        assert lo < 0.3 < hi and lo <= est <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dataset_dir: Path, mining_dir: Path,
         *extra: str) -> Path:
    out = tmp_path / "campaign"
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", f"dataset_dir={dataset_dir}", f"mining_dir={mining_dir}",
        f"output_dir={out}", f"hydra.run.dir={tmp_path / 'h'}", "backtest.n_boot=50", *extra])
    campaign_cli.main()
    return out


def test_campaign_backtest_on_tiny_dataset_is_non_zero_and_as_of_the_cutoff(
        dataset_dir: Path, mining_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = _run(monkeypatch, tmp_path, dataset_dir, mining_dir, "rules.filters=[]")
    kpis = json.loads((out / "kpis.json").read_text())
    test = pd.read_parquet(dataset_dir / "test.parquet")
    assert pd.Timestamp(kpis["cutoff"]) == test["timestamp"].min()
    overall = kpis["backtest"]["overall"]["all"]
    assert overall["hit_rate"]["value"] > 0 and overall["revenue"]["value"] > 0
    lo, hi = overall["revenue"]["ci"]
    assert lo <= overall["revenue"]["value"] <= hi
    assert set(kpis["backtest"]) == {"overall", "segment", "channel", "promotion"}
    users = pd.read_parquet(out / "user_outcomes.parquet")
    plan = pd.read_parquet(out / "plan.parquet")
    # hits are (plan row, holdout purchase) pairs: recompute them from the test split
    bought = test[test["event"] == "purchase"][["user_idx", "item_idx"]].drop_duplicates()
    assert users["hits"].sum() == len(plan.merge(bought, on=["user_idx", "item_idx"]))
    assert "Backtest on the holdout purchases" in (out / "summary.md").read_text()


def test_campaign_cutoff_outside_the_data_exits_2(dataset_dir: Path, mining_dir: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for cutoff in ("1999-01-01", "2031-01-01", "not-a-date"):
        with pytest.raises(SystemExit) as exc:
            _run(monkeypatch, tmp_path, dataset_dir, mining_dir, f"backtest.cutoff={cutoff}")
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cutoff" in err
    assert not (tmp_path / "campaign").exists()


def test_campaign_refuses_mining_after_the_cutoff(dataset_dir: Path, mining_dir: Path,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(monkeypatch, tmp_path, dataset_dir, mining_dir, "backtest.cutoff=2024-02-01")
    assert exc.value.code == 2 and "mined up to" in capsys.readouterr().err
