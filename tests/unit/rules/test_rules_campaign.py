"""recsys-campaign end to end on the tiny dataset: plan files, summary, KPIs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.cli import campaign as campaign_cli
from recsys.marketing.campaign import BacktestConfig, CampaignInputs, run_backtest_campaign
from recsys.marketing.candidates import HistoryCandidateConfig
from recsys.rules import parse_rules


def test_campaign_cli_writes_plan_and_summary(dataset_dir: Path, mining_dir: Path, tmp_path: Path,
                                              candidates: Callable[..., pd.DataFrame],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cands_path = tmp_path / "cands.parquet"
    cands = candidates(list(range(50)), list(range(40)), seed=5)
    cands.to_parquet(cands_path)
    out = tmp_path / "campaign"
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", f"candidates_path={cands_path}", f"dataset_dir={dataset_dir}",
        f"mining_dir={mining_dir}", f"output_dir={out}", "campaign_id=spring",
        f"hydra.run.dir={tmp_path / 'h'}"])
    campaign_cli.main()
    assert {p.name for p in out.iterdir()} == {"plan.parquet", "plan.csv", "summary.md",
                                              "rule_counts.json", "kpis.json", "removed.parquet",
                                              "kpis.csv", "user_outcomes.parquet"}
    removed = pd.read_parquet(out / "removed.parquet")
    assert len(removed) + len(pd.read_parquet(out / "plan.parquet")) <= len(cands)
    assert set(removed["removed_by"].astype(str)) <= {"already_bought", "out_of_stock",
                                                       "age_restricted", "no_marketing_consent"}
    plan = pd.read_parquet(out / "plan.parquet")
    csv = pd.read_csv(out / "plan.csv")
    assert len(plan) == len(csv) > 0 and (plan["campaign_id"] == "spring").all()
    assert {"promotion", "channel", "send_time", "suggested_price", "explanation"} <= set(plan.columns)
    first = json.loads(csv["explanation"].iloc[0])
    assert set(first) >= {"rules_fired", "score_before", "score_after", "contributions",
                          "social_image", "promotion", "channel"}
    assert plan["explanation"].iloc[0]["score_after"] == pytest.approx(plan["score"].iloc[0])
    assert not plan["user_idx"].isin([0]).any()  # no marketing consent
    kpis = json.loads((out / "kpis.json").read_text())
    assert {"cutoff", "backtest", "retrieval"} <= set(kpis)
    assert {"hit_rate", "revenue", "aov", "repeat_purchase_rate", "retention_rate", "cost",
            "roi"} <= set(kpis["backtest"]["overall"]["all"])
    assert set(kpis["retrieval"]) == {"before_rules", "after_rules"}
    summary = (out / "summary.md").read_text()
    assert "Retrieval metrics before and after rules" in summary and "## Channels" in summary
    counts = json.loads((out / "rule_counts.json").read_text())
    assert counts["no_marketing_consent"] == int(cands["user_idx"].isin(
        [u for u in range(50) if not pd.read_parquet(dataset_dir / "users.parquet")
         ["marketing_consent"][u]]).sum())


def test_campaign_cli_missing_candidates_exit_2(dataset_dir: Path, mining_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", f"candidates_path={tmp_path / 'none.parquet'}",
        f"dataset_dir={dataset_dir}", f"mining_dir={mining_dir}", f"output_dir={tmp_path / 'o'}",
        f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exc:
        campaign_cli.main()
    assert exc.value.code == 2 and "candidates file not found" in capsys.readouterr().err


def test_campaign_with_nobody_left(dataset_dir: Path, mining_dir: Path, tmp_path: Path,
                                   raw_rules: dict[str, Any],
                                   candidates: Callable[..., pd.DataFrame]) -> None:
    cands = candidates([0], [1, 2, 3])  # user 0 has no marketing consent
    inp = CampaignInputs(
        campaign_id="c", dataset_dir=dataset_dir, mining_dir=mining_dir,
        output_dir=tmp_path / "out", purchase_events=("purchase",),
        aliases={"category": ["category"]}, demand_window_days=28.0,
        candidates=HistoryCandidateConfig(10, 28.0, 0.5, 0.1))
    bt = BacktestConfig(cutoff=None, holdout_split="test", horizon_days=None, retention_days=28.0,
                        n_boot=20, ci_level=0.9, seed=0, ks=(5,))
    kpis = run_backtest_campaign(inp, parse_rules(raw_rules), bt, cands)
    assert kpis["backtest"]["overall"]["all"]["users"] == 0
    assert pd.read_csv(tmp_path / "out" / "plan.csv").empty
    assert "recommended rows: 0" in (tmp_path / "out" / "summary.md").read_text()
