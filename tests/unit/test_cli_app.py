"""The Hydra apps' shared plumbing: user configs from --config-dir or hydra.searchpath, one-line
errors (exit 2) for a missing config dir and an unknown hparams_search, the task's value returned
by run_app, and the table of a sweep's trials."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli._app import _precheck, run_app
from recsys.cli.trials import write_tables
from recsys.errors import ConfigError


def _cli(app: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"recsys.cli.{app}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture()
def user_conf(tmp_path: Path) -> Path:
    """A user's own config dir with a dataset and an experiment, outside the package."""
    conf = tmp_path / "myconf"
    (conf / "data").mkdir(parents=True)
    (conf / "experiment").mkdir()
    (conf / "data" / "mine.yaml").write_text("defaults:\n  - synthetic\n  - _self_\nname: mine\n")
    (conf / "experiment" / "wide.yaml").write_text(
        "# @package _global_\nname: wide\nseed: 7\nmodel:\n  net:\n    item_tower:\n      dim: 96\n")
    return conf


@pytest.mark.parametrize("how", ["config_dir", "searchpath"])
def test_user_configs_compose_from_another_directory(user_conf: Path, tmp_path: Path,
                                                     how: str) -> None:
    where = ([f"--config-dir={user_conf}"] if how == "config_dir"
             else [f"hydra.searchpath=[file://{user_conf}]"])
    res = _cli("train", *where, "data=mine", "experiment=wide", "--cfg", "job", "--resolve",
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "name: wide" in res.stdout and "seed: 7" in res.stdout  # experiments override any key
    assert "dim: 96" in res.stdout and "/data/mine" in res.stdout  # dataset_dir from data.name
    _precheck("evaluate", ["data=mine"], config_dir=str(user_conf))


def test_missing_config_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    res = _cli("data", "--config-dir", str(tmp_path / "nope"), "data=synthetic", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: --config-dir {tmp_path / 'nope'}: no such directory"
    assert not (tmp_path / "outputs").exists()


def test_unknown_hparams_search_is_one_line_exit_2(tmp_path: Path) -> None:
    res = _cli("train", "-m", "hparams_search=nosuch", f"paths.output_dir={tmp_path / 'o'}",
               cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "hparams_search/nosuch" in lines[0] and "two_tower" in lines[0]
    assert not (tmp_path / "o").exists()


def test_every_app_selects_the_dataset_with_data() -> None:
    for app in ["data", "train", "evaluate", "export", "features", "mine", "recommend",
                "campaign", "adjust"]:
        _precheck(app, ["data=hm"])
        with pytest.raises(ConfigError, match="data_name"):
            _precheck(app, ["data_name=hm"])


def test_run_app_returns_the_task_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["recsys-data", f"paths.output_dir={tmp_path}", "data=hm"])
    assert run_app("data", lambda cfg: f"{cfg.data.name}:{cfg.output_dir}") == (
        f"hm:{tmp_path}/data/hm")


def test_trials_table_lists_every_trial_best_first(tmp_path: Path) -> None:
    rows = [{"trial": 0, "objective": 0.2, "status": "completed", "run_dir": "r0",
             "overrides": {"lr": "0.01", "data": "ml1m"}},
            {"trial": 1, "objective": None, "status": "failed", "run_dir": "r1",
             "overrides": {"lr": "0.1", "data": "ml1m"}},
            {"trial": 2, "objective": 0.3, "status": "completed", "run_dir": "r2",
             "overrides": {"lr": "0.001", "data": "ml1m"}}]
    write_tables(tmp_path, rows, swept=[])
    with (tmp_path / "trials.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["trial"] for r in table] == ["0", "1", "2"] and list(table[0]) == [
        "trial", "objective", "status", "lr", "run_dir"]  # constant overrides left out
    md = (tmp_path / "trials.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in md[2:]] == ["| 2", "| 0", "| 1"]


def test_trials_table_gathers_jobs_of_parallel_workers(tmp_path: Path) -> None:
    """hydra/launcher=joblib runs each job's callback in its own process: every worker's
    TrialsTable must still land in one table."""
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from recsys.cli.trials import TrialsTable

    def job(num: int, value: float) -> None:
        config = OmegaConf.create({"hydra": {
            "mode": RunMode.MULTIRUN, "job": {"num": num}, "sweep": {"dir": str(tmp_path)},
            "sweeper": {"direction": "maximize", "params": {"lr": "interval(0.001, 0.1)"}}}})
        result = JobReturn(overrides=[f"lr={value / 10}"], working_dir=f"w{num}")
        result.status = JobStatus.COMPLETED
        result.return_value = value
        TrialsTable().on_job_end(config, result)   # a fresh instance: another worker process

    job(1, 0.3)
    job(0, 0.2)
    with (tmp_path / "trials.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [(r["trial"], r["objective"], r["lr"]) for r in table] == [
        ("0", "0.2", "0.02"), ("1", "0.3", "0.03")]
