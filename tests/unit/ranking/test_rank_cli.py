"""``recsys-rank`` on a toy dataset: the results table, report, ranker and feature importance;
bad inputs print one line and exit 2 with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from recsys.cli._app import CONFIG_DIR
from recsys.evaluation.toy import make_toy_dataset
from recsys.serving.ranked import RankedRecommender

ROOT = Path(__file__).resolve().parents[3]
EVAL = ["eval.only=[repurchase]", "eval.segments=[]", "eval.ks=[5,12]"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recsys.cli.rank", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_rank_cli_reports_then_refuses_bad_input(tmp_path: Path, toy_overrides: list[str]) -> None:
    data = make_toy_dataset(n_users=80, n_items=60).write(tmp_path / "toy")
    out = tmp_path / "rank"
    common = [f"dataset_dir={data}", f"output_dir={out}", f"paths.output_dir={tmp_path}", *toy_overrides,
              *EVAL]
    proc = run(*common)
    assert proc.returncode == 0, proc.stderr
    assert "ranked" in proc.stdout and "candidate recall" in proc.stdout
    doc = json.loads((out / "metrics.json").read_text())
    assert {"ranked", "source_repurchase", "source_siblings", "repurchase"} <= set(doc["methods"])
    assert set(doc["candidate_recall"]["union"]) == {"@5", "@20"}
    assert doc["feature_importance"] and (out / "ranker" / "ranker.txt").is_file()
    calib = doc["calibration"]  # measured on the test candidates, and on each user's top 12
    assert 0 < calib["top12"]["pairs"] < calib["candidates"]["pairs"]
    assert 0.0 <= calib["top12"]["brier"] <= 1.0 and calib["candidates"]["table"]
    served = RankedRecommender.load(out / "bundle")  # the bundle serves the evaluated ranker
    assert served.ranker.feature_names == tuple(json.loads(
        (out / "ranker" / "ranker.json").read_text())["features"])
    images = tmp_path / "images"  # a features cache of another dataset: one item too few
    images.mkdir()
    np.save(images / "item_features.npy", np.ones((59, 4), np.float32))
    np.save(images / "item_mask.npy", np.ones(59, bool))
    for bad, words in [("candidates.budget=0", "candidates.budget"),
                       (f"candidates.features.image_features={images}", "item_features.npy"),
                       ("ranker.two_tower_earlier=never", "two_tower_earlier"),
                       ("candidates.sources.siblings.column=no_such", "no_such"),
                       ("candidates.features.item_columns=[nope]", "item_columns"),
                       ("candidates.features.basket_half_life=0", "basket_half_life"),
                       ("candidates.sources.repurchase.budget=0", "sources.repurchase.budget"),
                       ("candidates.sources.new_items.enabled=true "
                        "candidates.sources.new_items.smoothing=0", "new_items.smoothing"),
                       ("candidates.features.events={weights:{view:-1},smoothing:0.2}",
                        "events.weights.view"),
                       ("candidates.features.events=null candidates.sources.taste.enabled=true",
                        "sources.taste")]:
        fresh = tmp_path / "bad"
        proc = run(*common, *bad.split(), f"output_dir={fresh}")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr
        assert not fresh.exists()


def test_sweep_config_tunes_on_validation_users() -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="rank", overrides=["ranker/search=tpe", "data=hm"],
                      return_hydra_config=True)
    assert cfg.mode == "tune"
    assert "ranker.params.learning_rate" in cfg.hydra.sweeper.params
    assert cfg.candidates.sources.siblings.column == "item_id"  # the dataset's own values


@pytest.mark.parametrize(("config", "data", "periods"), [
    ("rank", "hm", 25), ("rank", "synthetic", 10), ("evaluate", "hm", 25)])
def test_per_dataset_ranker_settings(config: str, data: str, periods: int) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config, overrides=[f"data={data}"])
    assert cfg.ranker.extra_periods == periods  # ranker/data/<data>.yaml over lambdarank.yaml


def test_tuning_averages_the_objective_over_user_splits(
        tmp_path: Path, toy_overrides: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from recsys.cli.rank import tune

    data = make_toy_dataset(n_users=80, n_items=60).write(tmp_path / "toy")
    common = [f"dataset_dir={data}", f"paths.output_dir={tmp_path}", *toy_overrides, *EVAL,
              "mode=tune", "eval.objective_metric=map"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        single = [tune(compose(config_name="rank", overrides=[*common, f"seed={s}"]))
                  for s in (0, 1)]
        both = tune(compose(config_name="rank", overrides=[*common, "tune_seeds=[0,1]"]))
    assert both == pytest.approx(sum(single) / 2)
    assert "mean of 2 splits" in capsys.readouterr().out
