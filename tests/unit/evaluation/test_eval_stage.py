"""The evaluate stage driven by the composed Hydra config (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from recsys.cli._app import CONFIG_DIR
from recsys.errors import DataError
from recsys.evaluation.stage import run_evaluation
from recsys.evaluation.toy import make_toy_dataset


def test_default_eval_config_runs_on_a_toy_dataset(tmp_path: Path) -> None:
    data = make_toy_dataset().write(tmp_path / "toy")
    overrides = [f"dataset_dir={data}", f"output_dir={tmp_path / 'eval'}", "eval.ks=[5,12,20]",
                 "eval.methods.als.iterations=2", "eval.methods.bpr.epochs=1",
                 "eval.min_segment_users=5"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=overrides)
    out, result = run_evaluation(cfg)
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["exclude_purchased"] is False and doc["k"] == 12  # data=synthetic keeps bought items
    assert list(doc["methods"]) == ["popularity", "recent_popularity", "repurchase", "itemknn",
                                    "ease", "edlae", "als", "bpr"]
    assert "gender=f" in doc["slices"] and "age=missing" not in doc["slices"]
    assert result.n_users == doc["n_users"] == 60
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[f"dataset_dir={tmp_path / 'none'}"])
    with pytest.raises(DataError, match=r"no manifest\.json"):
        run_evaluation(cfg)


@pytest.mark.parametrize(("data", "rule"), [("synthetic", False), ("hm", False), ("ml1m", True)])
def test_one_exclusion_rule_reaches_training_and_evaluation(data: str, rule: bool) -> None:
    """The data config's exclude_history is what training's validation and recsys-evaluate use."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        train = compose(config_name="train", overrides=[f"data={data}"])
        evaluate = compose(config_name="evaluate", overrides=[f"data={data}"])
    assert train.model.system.exclude_history is rule
    assert evaluate.eval.exclude_purchased is rule
