"""``recsys-train -m hparams_search=two_tower``: an Optuna sweep of two short trials on the tiny
world; each trial trains in its own run directory and the sweep dir gets the table of trials."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "training"))
from tiny_world import write_dataset


def test_two_trial_sweep_writes_a_table_of_trials(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "world", with_images=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recsys.cli.train", "-m", "hparams_search=two_tower",
           "hydra.sweeper.n_trials=2", f"dataset_dir={data}", f"paths.output_dir={out}",
           "debug=limit_batches", "torch_threads=1", "model.net.user_tower.id_buckets=101",
           "~callbacks.progress_bar", "datamodule.batch_size=64"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (out / "hydra" / "multirun").iterdir()
    with (sweep / "trials.csv").open() as fh:
        trials = list(csv.DictReader(fh))
    assert [t["trial"] for t in trials] == ["0", "1"]
    assert {"model.optimizer.lr", "model.net.temperature"} <= set(trials[0])
    assert trials[0]["model.optimizer.lr"] != trials[1]["model.optimizer.lr"]
    runs = {Path(t["run_dir"]) for t in trials}
    assert len(runs) == 2
    for t in trials:  # each trial's objective is the best validation recall of its run
        run = Path(t["run_dir"])
        assert json.loads((run / "run.json").read_text())["name"] == "two_tower"
        metrics = json.loads((run / "metrics.json").read_text())
        assert float(t["objective"]) == metrics["objective"]
        assert "test/recall@20" not in metrics  # trials never look at the test split
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(float(t["objective"]) for t in trials)
