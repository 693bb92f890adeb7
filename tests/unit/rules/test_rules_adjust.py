"""Outcome logs: validation errors; adjustment: bounded budget shifts and coupon depths."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from recsys.cli import adjust as adjust_cli
from recsys.errors import ConfigError, RuleError
from recsys.rules import load_rules, parse_rules
from recsys.rules.adjust import AdjustSettings, adjust_rules
from recsys.rules.changelog import run_adjust
from recsys.rules.outcomes import validate_outcomes

SETTINGS = AdjustSettings(targets={"open_rate": 0.2, "conversion_rate": 0.02, "roi": 1.0},
                          per_channel={"sms": {"roi": 0.5}}, min_sent=100, max_step=0.2,
                          depth_min=0.05, depth_max=0.3, depth_step=0.05)


def _log(rows: list[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    rows = rows or [
        ("c1", "u001", "app_push", "champions", "loyalty_points", 500, 150, 20, 900.0, 100.0),
        ("c1", "u002", "email", "champions", "retention_coupon", 400, 60, 2, 50.0, 120.0),
        ("c1", None, "sms", "hibernating", "price_sensitive_discount", 300, 200, 2, 40.0, 20.0),
        ("c1", None, "social_ads", "at_risk", "none", 50, 10, 5, 300.0, 10.0),
    ]
    return pd.DataFrame(rows, columns=["campaign_id", "user_id", "channel", "segment", "promotion",
                                       "sent", "opened", "converted", "revenue", "cost"])


def test_budget_shift_is_bounded_and_conserves_the_total(raw_rules: dict[str, Any]) -> None:
    rules = parse_rules(raw_rules)
    adj = adjust_rules(rules, validate_outcomes(_log(), rules, "log.csv"), SETTINGS)
    before = {c: o.budget for c, o in rules.channels.items()}
    after = {c: o.budget for c, o in adj.rules.channels.items()}
    assert sum(after.values()) == pytest.approx(sum(before.values()))
    assert after["email"] == pytest.approx(before["email"] * 0.8)       # ROI far below: full step
    assert after["app_push"] > before["app_push"]                         # ROI 8 >= 1
    assert after["sms"] > before["sms"]                                   # ROI 1 >= sms target 0.5
    assert after["social_ads"] == before["social_ads"]                    # 50 sends < min_sent
    for c in before:
        assert abs(after[c] - before[c]) <= SETTINGS.max_step * before[c] + 1e-9
    assert any("email.budget" in c for c in adj.changes)
    assert adj.channels.loc["email", "roi"] == pytest.approx((50 - 120) / 120)


def test_coupon_depths_move_one_step_within_bounds(raw_rules: dict[str, Any]) -> None:
    rules = parse_rules(raw_rules)
    adj = adjust_rules(rules, validate_outcomes(_log(), rules, "log.csv"), SETTINGS)
    depth = {p.name: p.depth for p in adj.rules.promotions}
    assert depth["retention_coupon"] == pytest.approx(0.15)   # ROI below target: lowered
    assert depth["price_sensitive_discount"] == pytest.approx(0.15)  # conversion low, ROI ok: raised
    assert depth["loyalty_points"] == 0.05                      # on target: unchanged
    raw_rules["promotions"][3]["depth"] = 0.3                   # already at the upper bound
    rules = parse_rules(raw_rules)
    adj = adjust_rules(rules, validate_outcomes(_log(), rules, "log.csv"), SETTINGS)
    assert {p.name: p.depth for p in adj.rules.promotions}["price_sensitive_discount"] == 0.3


@pytest.mark.parametrize(("edit", "message", "column"), [
    (lambda d: d.loc.__setitem__((1, "channel"), "fax"), "unknown channel 'fax'", "channel"),
    (lambda d: d.loc.__setitem__((2, "promotion"), "mystery"), "unknown promotion", "promotion"),
    (lambda d: d.loc.__setitem__((0, "sent"), -5), "negative value", "sent"),
    (lambda d: d.loc.__setitem__((3, "cost"), -1.0), "negative value", "cost"),
    (lambda d: d.loc.__setitem__((0, "opened"), 10_000), "exceeds sent", "opened"),
    (lambda d: d.__setitem__("converted", d["converted"].astype(object)) or
     d.loc.__setitem__((2, "converted"), "many"), "not a number", "converted"),
    (lambda d: d.drop(columns=["revenue"], inplace=True), "lacks a required column", "revenue"),
])
def test_bad_outcome_logs(raw_rules: dict[str, Any], edit: Any, message: str, column: str) -> None:
    log = _log()
    edit(log)
    with pytest.raises(RuleError, match=message) as err:
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    assert err.value.column == column and err.value.file == "log.csv"


def test_ids_checked_against_the_plan(raw_rules: dict[str, Any]) -> None:
    rules = parse_rules(raw_rules)
    plan = pd.DataFrame({"campaign_id": ["c1", "c1"], "user_id": ["u001", "u002"],
                         "segment": ["champions", "at_risk"]})
    log = _log()
    log.loc[2, "segment"] = "at_risk"
    log.loc[3, "segment"] = "at_risk"
    validate_outcomes(log, rules, "log.csv", plan)
    for col, value, message in (("campaign_id", "c9", "unknown campaign id 'c9'"),
                                ("user_id", "u999", "unknown user id 'u999'"),
                                ("segment", "vip", "unknown segment 'vip'")):
        bad = log.copy()
        bad.loc[1, col] = value
        with pytest.raises(RuleError, match=message) as err:
            validate_outcomes(bad, rules, "log.csv", plan)
        assert err.value.row == 2


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_step"):
        AdjustSettings({"open_rate": 0.1, "conversion_rate": 0.1, "roi": 1.0}, {}, 1, 1.5, 0.0, 0.3, 0.05)
    with pytest.raises(ConfigError, match="roi"):
        AdjustSettings({"open_rate": 0.1, "conversion_rate": 0.1}, {}, 1, 0.2, 0.0, 0.3, 0.05)


def test_run_writes_yaml_and_changelog(raw_rules: dict[str, Any], tmp_path: Path) -> None:
    log_path = tmp_path / "outcomes.csv"
    _log().to_csv(log_path, index=False)
    out = run_adjust(parse_rules(raw_rules, "conf/rules/default.yaml"), log_path, tmp_path / "adj",
                     SETTINGS)
    adjusted = load_rules(tmp_path / "adj" / "rules.yaml")  # valid rules again
    assert adjusted.channels["email"].budget < raw_rules["channels"]["options"]["email"]["budget"]
    log_md = (tmp_path / "adj" / "changelog.md").read_text()
    assert all(c in log_md for c in out.changes) and "below_target" in log_md
    assert yaml.safe_load((tmp_path / "adj" / "rules.yaml").read_text())["top_k"] == raw_rules["top_k"]


def test_cli_exit_2_on_negative_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    log = _log()
    log.loc[1, "converted"] = -3
    path = tmp_path / "outcomes.csv"
    log.to_csv(path, index=False)
    monkeypatch.setattr(sys, "argv", ["recsys-adjust", f"outcomes_path={path}",
                                      f"output_dir={tmp_path / 'adj'}",
                                      f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exc:
        adjust_cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"file {path}, row 2, column 'converted'" in err and "negative" in err
    assert not (tmp_path / "adj").exists()
    log.loc[1, "converted"] = 3
    log.to_csv(path, index=False)
    adjust_cli.main()
    assert (tmp_path / "adj" / "rules.yaml").is_file()


def test_unknown_target_kpi_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"adjust\.targets\.click_rate: not a known KPI"):
        AdjustSettings({"open_rate": 0.1, "conversion_rate": 0.1, "roi": 1.0, "click_rate": 0.3},
                       {}, 1, 0.2, 0.0, 0.3, 0.05)
    with pytest.raises(ConfigError, match=r"per_channel\.sms\.reach"):
        AdjustSettings({"open_rate": 0.1, "conversion_rate": 0.1, "roi": 1.0},
                       {"sms": {"reach": 0.3}}, 1, 0.2, 0.0, 0.3, 0.05)
    path = tmp_path / "outcomes.csv"
    _log().to_csv(path, index=False)
    monkeypatch.setattr(sys, "argv", ["recsys-adjust", f"outcomes_path={path}",
                                      f"output_dir={tmp_path / 'adj'}", "+targets.ctr=0.1",
                                      f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exc:
        adjust_cli.main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "not a known KPI" in err and len(err.splitlines()) == 1


def test_negative_revenue_is_refused(raw_rules: dict[str, Any]) -> None:
    log = _log()
    log.loc[2, "revenue"] = -4.0
    with pytest.raises(RuleError, match="negative value") as err:
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    assert (err.value.row, err.value.column) == (3, "revenue")


def _controlled() -> pd.DataFrame:
    rows = []
    for i in range(200):  # email: contacted users convert no more than the control
        rows.append(("c1", f"t{i}", "treatment", "email", "s", "retention_coupon", 1, 1,
                     int(i < 20), 30.0 * (i < 20), 2.0 * (i < 20) + 0.01))
    for i in range(50):
        rows.append(("c1", f"c{i}", "control", "email", "s", "retention_coupon", 0, 0,
                     int(i < 6), 30.0 * (i < 6), 0.0))
    return pd.DataFrame(rows, columns=["campaign_id", "user_id", "group", "channel", "segment",
                                       "promotion", "sent", "opened", "converted", "revenue",
                                       "cost"])


def test_incremental_roi_uses_the_control_group(raw_rules: dict[str, Any]) -> None:
    rules = parse_rules(raw_rules)
    log = validate_outcomes(_controlled(), rules, "log.csv")
    attributed = adjust_rules(rules, log, SETTINGS)
    assert attributed.promotions.loc["retention_coupon", "roi"] > 1.0  # 600 / 42 - 1
    s = AdjustSettings(**{**SETTINGS.__dict__, "roi_metric": "incremental_roi", "min_control": 30})
    adj = adjust_rules(rules, log, s)
    row = adj.promotions.loc["retention_coupon"]
    # incremental revenue: 600 - 200 * (180 / 50) = -120 -> incremental ROI < 0 -> depth lowered
    assert row["incremental_revenue"] == pytest.approx(600 - 200 * 180 / 50)
    assert row["control_conversion_rate"] == pytest.approx(6 / 50)
    depth = {p.name: p.depth for p in adj.rules.promotions}["retention_coupon"]
    assert depth == pytest.approx(0.2 - s.depth_step)


def test_control_rows_must_not_be_sent(raw_rules: dict[str, Any]) -> None:
    log = _controlled()
    log.loc[210, "sent"] = 1
    with pytest.raises(RuleError, match="control row must have sent 0") as err:
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    assert err.value.row == 211
    log = _controlled()
    log.loc[3, "group"] = "placebo"
    with pytest.raises(RuleError, match="unknown group 'placebo'"):
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    with pytest.raises(ConfigError, match="needs a group column"):
        adjust_rules(parse_rules(raw_rules), validate_outcomes(_log(), parse_rules(raw_rules), "x"),
                     AdjustSettings(**{**SETTINGS.__dict__, "roi_metric": "incremental_roi"}))


def _offer_log(offered_net: float, holdout_net: float, n: int = 200) -> pd.DataFrame:
    """Contacted users of retention_coupon, a quarter held out of the offer, and a control."""
    rng = np.random.default_rng(0)
    offer = (np.arange(n) % 4 != 0).astype(int)
    revenue = np.where(offer > 0, offered_net + 2.0, holdout_net) + rng.normal(0, 0.5, n)
    log = pd.DataFrame({
        "campaign_id": "c1", "user_id": [f"u{i}" for i in range(n)], "group": "treatment",
        "channel": "email", "segment": "champions", "promotion": "retention_coupon", "sent": 1,
        "offer_sent": offer, "opened": 1, "converted": 1, "revenue": revenue.clip(0),
        "promotion_cost": np.where(offer > 0, 2.0, 0.0)})
    return log.assign(cost=log["promotion_cost"])


@pytest.mark.parametrize(("offered", "holdout", "depth"), [
    (6.0, 4.0, 0.25),   # the offer adds 2 net per user: its depth rises one step
    (4.0, 6.0, 0.15),   # it loses 2: falls one step
    (4.0, 4.0, 0.15),   # no evidence that it pays: falls one step
])
def test_depth_follows_the_offer_holdout(raw_rules: dict[str, Any], offered: float,
                                         holdout: float, depth: float) -> None:
    rules = parse_rules(raw_rules)
    adj = adjust_rules(rules, validate_outcomes(_offer_log(offered, holdout), rules, "log.csv"),
                       dataclasses.replace(SETTINGS, offer_evidence_z=1.645))
    assert {p.name: p.depth for p in adj.rules.promotions}["retention_coupon"] == \
        pytest.approx(depth)
    assert any("vs message only" in c for c in adj.changes)


def test_channel_routes_follow_open_rates(raw_rules: dict[str, Any]) -> None:
    """sms opens far more often than any other channel, preferred or not: users preferring
    social_ads or sms are routed to sms first."""
    rng = np.random.default_rng(1)
    rows = []
    rates = {"app_push": 0.3, "email": 0.3, "sms": 0.6, "social_ads": 0.1}
    for ch, rate in rates.items():
        for pref in (1, 0):
            n = 400 if pref else 100
            rows.append(pd.DataFrame({
                "channel": ch, "preferred": pref, "sent": 1, "group": "treatment",
                "opened": (rng.random(n) < min(rate + 0.1 * pref, 1)).astype(int)}))
    t = pd.concat(rows, ignore_index=True)
    t["revenue"] = np.where(t["opened"] > 0, 10.0, 1.0)
    c = pd.DataFrame({"channel": "email", "preferred": 1, "sent": 0, "group": "control",
                      "opened": 0, "revenue": np.tile([0.0, 2.0], 100)})
    log = pd.concat([t, c], ignore_index=True).assign(
        campaign_id="c1", segment="champions", promotion="none", converted=0, cost=0.0,
        promotion_cost=0.0)
    log["cost"] = log["channel"].map({n: o.cost for n, o in parse_rules(raw_rules).channels.items()})
    log.loc[log["sent"] == 0, "cost"] = 0.0
    rules = parse_rules(raw_rules)
    adj = adjust_rules(rules, validate_outcomes(log, rules, "log.csv"),
                       dataclasses.replace(SETTINGS, route_channels=True, min_control=30))
    routes = adj.rules.channel_routes
    assert routes["social_ads"][0] == "sms" and routes["social_ads"][-1] == "social_ads"
    assert "sms" not in routes or routes["sms"][0] == "sms"   # its default order starts with sms
    assert all(sorted(r) == sorted(rules.channel_order) for r in routes.values())
    # too few non-preferred sends: no routes
    few = log[(log["preferred"] == 1) | (log["group"] == "control")]
    adj = adjust_rules(rules, validate_outcomes(few, rules, "log.csv"),
                       dataclasses.replace(SETTINGS, route_channels=True, min_control=30))
    assert adj.rules.channel_routes == {}


@pytest.mark.parametrize(("column", "value"), [("offer_sent", 2), ("preferred", -1)])
def test_flag_columns_are_checked(raw_rules: dict[str, Any], column: str, value: int) -> None:
    log = _offer_log(4.0, 4.0, 8).assign(preferred=1)
    log.loc[3, column] = value
    with pytest.raises(RuleError, match="must be 0 or 1") as err:
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    assert err.value.column == column and err.value.row == 4
    log = _offer_log(4.0, 4.0, 8)
    log.loc[2, ["sent", "group", "offer_sent", "converted"]] = [0, "control", 1, 0]
    with pytest.raises(RuleError, match="offer_sent exceeds sent") as err:
        validate_outcomes(log, parse_rules(raw_rules), "log.csv")
    assert err.value.row == 3
