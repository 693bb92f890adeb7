"""recsys-mine end to end on the tiny dataset, and its user errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from mining_world import N_USERS, compose
from omegaconf import OmegaConf

from recsys.cli import mine as mine_cli
from recsys.errors import ConfigError
from recsys.mining import MINING_FILES, MiningConfig, MiningSummary, load_mining


def test_outputs_follow_the_contract(mined: MiningSummary) -> None:
    out = mined.output_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(MINING_FILES)
    m = load_mining(out)
    assert len(m.rfm) == len(m.segments) == len(m.profiles) == len(m.predictions) == N_USERS
    assert m.segments["user_idx"].tolist() == list(range(N_USERS))
    # users 48, 49 never interacted and 45-47 only viewed: prospects
    prospects = set(m.segments.loc[m.segments["segment"] == "prospects", "user_idx"])
    assert prospects == {45, 46, 47, 48, 49}
    assert set(m.association_rules["level"]) <= {"item", "category"}
    assert (m.association_rules["level"] == "item").any()
    rules = m.association_rules
    item = rules[rules["level"] == "item"]
    # thresholds from conf/mining/default.yaml; support from min_count baskets
    assert (item["lift"] >= 2.0).all() and (rules["confidence"] >= 0.1).all()
    assert (item["support"] * item["n_baskets"] >= 5 - 1e-9).all()
    thresholds = m.meta["association_thresholds"]["item"]
    assert thresholds["min_support"] == pytest.approx(5 / thresholds["baskets"])
    clf = json.loads((out / "classifiers.json").read_text())
    for task in ("churn", "intent"):
        assert set(clf[task]["models"]) == {"decision_tree", "gradient_boosting"}
        assert all(0.0 <= v["auc"] <= 1.0 for v in clf[task]["models"].values())
    lines = (out / "profiles.jsonl").read_text().splitlines()
    assert len(lines) == N_USERS
    assert {"demographics", "preferences", "purchasing_power", "habits"} <= set(json.loads(lines[0]))
    report = (out / "report.md").read_text()
    assert "## Classifiers" in report and "silhouette" in report
    for name in ("segment_sizes.png", "rfm_distributions.png", "segment_profiles.png",
                 "association_rules.png"):
        assert f"]({name})" in report and (out / name).read_bytes()[:4] == b"\x89PNG"
    # mining joins cleanly into one user table for the rules
    table = m.user_table()
    assert {"segment", "frequency", "churn_proba", "price_sensitive", "top_hour"} <= set(table.columns)
    assert not any(table[c].map(lambda v: isinstance(v, list)).any() for c in table.columns)


def test_cli_writes_outputs_and_maps_errors(tiny_dataset: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mining"
    monkeypatch.setattr(sys, "argv", ["recsys-mine", f"dataset_dir={tiny_dataset}",
                                      f"output_dir={out}", f"hydra.run.dir={tmp_path / 'h'}",
                                      "mining.classifiers.models={decision_tree: {max_depth: 2}}"])
    mine_cli.main()
    assert (out / "segments.parquet").is_file()
    assert pd.read_parquet(out / "segments.parquet")["user_idx"].is_unique
    monkeypatch.setattr(sys, "argv", ["recsys-mine", f"dataset_dir={tmp_path / 'nowhere'}",
                                      f"output_dir={out}", f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exc:
        mine_cli.main()
    assert exc.value.code == 2
    assert "nowhere" in capsys.readouterr().err


def test_config_values_are_checked() -> None:
    base = OmegaConf.to_container(compose("mine").mining)
    assert isinstance(base, dict)
    MiningConfig.from_cfg(base)
    for path, value, message in (
        (("classifiers", "models"), {"forest": {}}, "models"),
        (("segmentation", "k_min"), 1, "k_min"),
        (("association", "algorithm"), "eclat", "algorithm"),
        (("basket_key",), "week", "basket_key"),
    ):
        bad = json.loads(json.dumps(base))
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(ConfigError, match=message):
            MiningConfig.from_cfg(bad)
    missing = json.loads(json.dumps(base))
    del missing["rfm"]
    with pytest.raises(ConfigError, match="rfm"):
        MiningConfig.from_cfg(missing)
