"""Malformed rules: unknown fields / operators, wrong types, missing columns, conflicts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from recsys.cli import campaign as campaign_cli
from recsys.errors import RuleError
from recsys.rules import RuleContext, apply_rules, load_rules, parse_rules


def test_default_rules_parse(raw_rules: dict[str, Any]) -> None:
    cfg = parse_rules(raw_rules, "conf/rules/default.yaml")
    assert cfg.top_k == 10 and cfg.filters[0].kind == "already_bought"
    assert [p.priority for p in cfg.promotions] == sorted(p.priority for p in cfg.promotions)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["boosts"][2].update(multiplier=2.0), "boosts[2] 'new_arrivals': unknown field 'multiplier'"),
    (lambda r: r["filters"][1]["when"].update(op="=<"), "unknown operator '=<'"),
    (lambda r: r["promotions"][0].update(depth="deep"), "promotions[0] 'first_purchase_coupon'.depth: wrong type"),
    (lambda r: r.update(top_k="ten"), "top_k: wrong type"),
    (lambda r: r["boosts"][0].update(add=True), "wrong type"),
    (lambda r: r["channels"]["options"].update(fax={"cost": 1.0}), "unknown channel 'fax'"),
    (lambda r: r["promotions"][1].update(offer="cashback"), "unknown value 'cashback'"),
    (lambda r: r.update(extra_section={}), "unknown field 'extra_section'"),
    (lambda r: r["promotions"][0].pop("when"), "missing required field"),
    (lambda r: r["caps"].update(expected_redemption=2.0), "expected_redemption"),
    # conflicts
    (lambda r: r["promotions"][1].update(priority=10), "share priority 10"),
    (lambda r: r["boosts"][1].update(name="out_of_stock"), "'out_of_stock' is used twice"),
    (lambda r: r["boosts"].append({"name": "stockout_boost", "when": {"column": "stock", "op": "==",
                                                                      "value": 0}, "add": 1.0}),
     "same condition as filter 'out_of_stock'"),
    (lambda r: r["promotions"].append({**r["promotions"][0], "name": "copy", "priority": 99}),
     "same condition"),
    (lambda r: r["pricing"]["rules"][0].update(factor=0.5), "outside the guardrails"),
    (lambda r: r["channels"].update(order=["email", "sms"]), "must list every channel"),
    (lambda r: r["channels"].update(routes={"sms": ["sms", "sms", "email", "app_push"]}),
     "routes.sms .* must list every channel"),
    (lambda r: r["boosts"][0].update(name="campaign_budget"), "reserved"),
])
def test_bad_rules_raise_rule_error(raw_rules: dict[str, Any], edit: Callable[[dict[str, Any]], Any],
                                    message: str) -> None:
    edit(raw_rules)
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        parse_rules(raw_rules, "conf/rules/test.yaml")
    assert str(err.value).startswith("file conf/rules/test.yaml")


@pytest.mark.parametrize(("edit", "message", "column"), [
    (lambda r: r["filters"][1]["when"].update(column="stok"), "unknown column 'stok'", "stok"),
    (lambda r: r["filters"][1]["when"].update(value="none"), "wrong type: 'none' cannot be compared", "stock"),
    (lambda r: r["promotions"][0]["when"].update(column="stock"), "item column", "stock"),
    (lambda r: r["pricing"]["rules"][0]["when"]["all"][0].update(column="churn_proba"), "user column",
     "churn_proba"),
    (lambda r: r["boosts"][3].update(add_column="segment"), "not numeric", "segment"),
    (lambda r: r["filters"][3]["when"].update(op="<"), "needs a numeric or datetime column",
     "marketing_consent"),
    (lambda r: r["caps"].update(category_column="genre"), "unknown column 'genre'", "genre"),
])
def test_rules_are_checked_against_the_frame(raw_rules: dict[str, Any], context: RuleContext,
                                             candidates: Callable[..., pd.DataFrame],
                                             edit: Callable[[dict[str, Any]], Any], message: str,
                                             column: str) -> None:
    edit(raw_rules)
    cfg = parse_rules(raw_rules, "conf/rules/test.yaml")
    with pytest.raises(RuleError, match=message) as err:
        apply_rules(candidates([1, 2], [0, 1, 2]), context, cfg)
    assert err.value.column == column and err.value.file == "conf/rules/test.yaml"


def test_malformed_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("top_k: 10\nfilters:\n  - name: x\n    when: {column: stock, op: '<'\n")
    with pytest.raises(RuleError, match="malformed YAML") as err:
        load_rules(bad)
    assert err.value.file == str(bad)
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_campaign_cli_exits_2_on_bad_rules(raw_rules: dict[str, Any], dataset_dir: Path,
                                           mining_dir: Path, candidates: Callable[..., pd.DataFrame],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw_rules["boosts"][1]["lift"] = 2.0
    rules = tmp_path / "bad.yaml"
    rules.write_text(yaml.safe_dump(raw_rules))
    cands = tmp_path / "cands.parquet"
    candidates([1, 2], [0, 1]).to_parquet(cands)
    monkeypatch.setattr(sys, "argv", [
        "recsys-campaign", f"candidates_path={cands}", f"dataset_dir={dataset_dir}",
        f"mining_dir={mining_dir}", f"output_dir={tmp_path / 'out'}", f"rules_path={rules}",
        f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exc:
        campaign_cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown field 'lift'" in err and str(rules) in err
    assert not (tmp_path / "out").exists()
