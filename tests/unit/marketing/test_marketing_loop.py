"""recsys-loop: rounds run end to end; consent, caps and budgets hold in every round."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from marketing_world import SYNTH

from recsys.cli import loop as loop_cli
from recsys.marketing.constraints import CHECKS


def test_loop_runs_rounds_with_no_violation(synth: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "loop"
    # tight caps and budgets so that they bind: at most 1 contact a week, small channel budgets
    monkeypatch.setattr(sys, "argv", [
        "recsys-loop", *SYNTH, f"paths.output_dir={synth}", f"output_dir={out}", "rounds=3",
        "round_days=3", "n_boot=50", f"hydra.run.dir={tmp_path / 'h'}",
        "campaign_overrides=['rules.caps.max_contacts=1','rules.caps.contact_window_days=7',"
        "'rules.channels.options.sms.budget=2.0','rules.caps.campaign_budget=20.0',"
        "'backtest.n_boot=20']",
        "adjust_overrides=['roi_metric=incremental_roi','min_sent=10','min_control=5']"])
    loop_cli.main()
    table = pd.read_csv(out / "loop.csv")
    assert table["round"].tolist() == [1, 2, 3]
    for k in CHECKS:
        assert (table[f"violations_{k}"] == 0).all(), k
    assert (table["contacted"] > 0).all() and table.loc[0, "revenue"] > 0
    # most users were messaged in round 1: with one contact a week, later rounds reach fewer
    assert table.loc[2, "contacted"] < table.loc[1, "contacted"] < table.loc[0, "contacted"]
    # the frequency cap binds: users messaged in round 1 are not messaged again 3 days later
    r1 = pd.read_csv(out / "round_1" / "outcomes.csv")
    r2 = pd.read_csv(out / "round_2" / "outcomes.csv")
    again = set(r1.loc[r1["sent"] > 0, "user_id"]) & set(r2.loc[r2["sent"] > 0, "user_id"])
    assert not again
    for r in (1, 2, 3):
        log = pd.read_csv(out / f"round_{r}" / "outcomes.csv")
        sms = log[(log["sent"] > 0) & (log["channel"] == "sms")]
        used = yaml.safe_load((out / f"round_{r}" / "rules_used.yaml").read_text())
        assert len(sms) * used["channels"]["options"]["sms"]["cost"] <= \
            used["channels"]["options"]["sms"]["budget"] + 1e-9
    # realised and noise-free figures with their CIs; offers held out at random every round
    assert (table["expected_ci_low"] <= table["expected_profit_per_contacted"]).all()
    assert (table["expected_profit_per_contacted"] <= table["expected_ci_high"]).all()
    assert (table["profit_ci_low"] <= table["profit_per_contacted"]).all()
    assert (table["offer_holdout"] > 0).any() and table["expected_incremental_profit"].notna().all()
    assert "routes" in table.columns
    md = (out / "loop.md").read_text()
    assert "revenue minus promotion cost per contacted user" in md and (out / "loop.png").stat().st_size > 0
    assert "expected incremental profit" in md
    assert yaml.safe_load((out / "final_rules.yaml").read_text())["top_k"] > 0
    # round 1 is the default campaign alone; challenger arms from round 2, each within its
    # share of the budgets (checked above on the combined plan)
    arms = [set(pd.read_parquet(out / f"round_{r}" / "plan.parquet")["arm"]) for r in (1, 2, 3)]
    assert arms[0] == {"champion"} and any(len(a) > 1 for a in arms[1:])
    assert table.loc[0, "challengers"] == "-" and (table["changes"] >= 0).all()
    tests = pd.read_csv(out / "challengers.csv")
    assert set(tests["round"]) <= {2, 3} and (tests["se"] > 0).all()


def test_loop_with_a_misspelt_move_exits_2_before_writing(
        synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "loop"
    monkeypatch.setattr(sys, "argv", [
        "recsys-loop", *SYNTH, f"paths.output_dir={synth}", f"output_dir={out}", "rounds=2",
        f"hydra.run.dir={tmp_path / 'h'}", "challengers.moves.1.set.0.path=filters.already_bougt"])
    with pytest.raises(SystemExit) as exc:
        loop_cli.main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "moves[1] 'replenish_after_28d': path 'filters.already_bougt'" in err and not out.exists()
