"""Baseline search spaces: every hparams_search/<baseline>.yaml composes with the shared sweeper
budget, parses into Optuna distributions, and the in-process tuner is seeded and reproducible;
``recsys-evaluate`` returns its objective; a real Hydra sweep asks the same values."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.cli._app import CONFIG_DIR
from recsys.errors import ConfigError
from recsys.evaluation.evaluator import EvalResult, EvalSettings, MethodResult
from recsys.evaluation.stage import objective_value, selected_methods
from recsys.evaluation.toy import make_toy_dataset
from recsys.evaluation.tuning import search_space, tune

BASELINES = ("ease", "edlae", "itemknn", "bpr", "als")


def composed(name: str, *extra: str) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="evaluate", overrides=[f"hparams_search={name}", *extra],
                       return_hydra_config=True)


def two_tower_budget() -> int:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["hparams_search=two_tower"],
                      return_hydra_config=True)
    return int(cfg.hydra.sweeper.n_trials)


@pytest.mark.parametrize("name", BASELINES)
def test_search_spaces_target_their_method_on_validation(name: str) -> None:
    cfg = composed(name)
    assert cfg.eval.split == "val" and cfg.eval.objective == name and list(cfg.eval.only) == [name]
    space = search_space(cfg.hydra.sweeper, name)
    assert space.distributions and set(space.distributions) <= set(cfg.eval.methods[name])
    assert space.n_trials == two_tower_budget()  # one budget for every search space
    assert space.seed == cfg.hydra.sweeper.sampler.seed and space.direction == "maximize"


def test_search_space_parses_the_sweeper_grammar() -> None:
    import optuna.distributions as D

    space = search_space({"params": {
        "eval.methods.m.a": "tag(log, interval(1.0, 100.0))",
        "eval.methods.m.b": "tag(log, int(interval(10, 1000)))",
        "eval.methods.m.c": "choice(32, 64)",
        "eval.methods.m.d": "interval(0.0, 1.0)",
        "eval.methods.m.e": "range(1, 5, 2)",
    }, "n_trials": 3, "sampler": {"seed": 1}}, "m")
    dist = space.distributions
    assert isinstance(dist["a"], D.LogUniformDistribution) and dist["a"].high == 100.0
    assert isinstance(dist["b"], D.IntLogUniformDistribution) and dist["b"].low == 10
    assert isinstance(dist["c"], D.CategoricalDistribution) and dist["c"].choices == (32, 64)
    assert isinstance(dist["d"], D.UniformDistribution)
    assert isinstance(dist["e"], D.IntUniformDistribution) and dist["e"].step == 2
    with pytest.raises(ConfigError, match=r"must start with 'eval\.methods\.m\.'"):
        search_space({"params": {"eval.methods.other.a": "choice(1, 2)"}, "n_trials": 1}, "m")


def test_tune_is_seeded_and_returns_the_best_trial() -> None:
    space = search_space({"params": {"eval.methods.m.x": "interval(-2.0, 2.0)",
                                     "eval.methods.m.n": "choice(1, 2, 3)"},
                          "n_trials": 12, "sampler": {"seed": 5}}, "m")

    def objective(values: dict[str, float]) -> float:
        return -(values["x"] - 0.5) ** 2 + values["n"]

    first, again = tune(space, objective), tune(space, objective)
    assert first.trials == again.trials and len(first.trials) == 12
    best = max(first.trials, key=lambda t: t["value"])
    assert first.value == best["value"] and first.best == {"x": best["x"], "n": best["n"]}


def test_objective_is_the_main_metric_of_the_named_method() -> None:
    settings = EvalSettings(ks=(5, 10), main_k=10, exclude_purchased=True, segments=(),
                            min_segment_users=1)
    result = EvalResult("val", "toy", settings, 3, 9, methods={
        "a": MethodResult({"ndcg@10": 0.1, "recall@10": 0.3}, {}, 0.0),
        "b": MethodResult({"ndcg@10": 0.2, "recall@10": 0.4}, {}, 0.0)})
    ev = {"objective": "b", "objective_metric": "recall"}
    assert objective_value(result, ev) == 0.4
    assert objective_value(result, {**ev, "objective": None}) == 0.3  # the first method
    with pytest.raises(ConfigError, match=r"eval\.objective: method 'c'"):
        objective_value(result, {**ev, "objective": "c"})
    with pytest.raises(ConfigError, match=r"eval\.objective_metric"):
        objective_value(result, {**ev, "objective_metric": "auc"})
    specs = {"a": {"kind": "popularity"}, "b": {"kind": "ease"}}
    assert list(selected_methods({"methods": specs, "only": ["b"]})) == ["b"]
    with pytest.raises(ConfigError, match=r"eval\.only: 'z'"):
        selected_methods({"methods": specs, "only": ["z"]})


@pytest.mark.slow
def test_evaluate_sweep_asks_what_the_in_process_tuner_asks(tmp_path: Path) -> None:
    data = make_toy_dataset().write(tmp_path / "toy")
    args = ["hparams_search=ease", "hydra.sweeper.n_trials=3", f"dataset_dir={data}",
            f"paths.output_dir={tmp_path / 'out'}", "eval.ks=[5,10]", "eval.main_k=10",
            "eval.segments=[]"]
    proc = subprocess.run([sys.executable, "-m", "recsys.cli.evaluate", "-m", *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "out" / "hydra" / "multirun").iterdir()
    with (sweep / "trials.csv").open() as fh:
        trials = list(csv.DictReader(fh))
    space = search_space(composed("ease", "hydra.sweeper.n_trials=3").hydra.sweeper, "ease")
    asked = tune(space, lambda values: 0.0).trials  # TPE's first trials are its seeded draws
    assert [float(t["eval.methods.ease.l2"]) for t in trials] == pytest.approx(
        [t["l2"] for t in asked])
    assert all(0.0 <= float(t["objective"]) <= 1.0 for t in trials)
    bad = subprocess.run([sys.executable, "-m", "recsys.cli.evaluate", "-m", *args,
                          "eval.split=test"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "eval.split=test must be val" in bad.stderr
