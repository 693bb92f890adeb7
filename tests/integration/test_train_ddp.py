"""``recsys-train trainer=ddp`` on CPU: two processes on gloo train (with the sparse user-id
table), validate, checkpoint and test the tiny world end to end through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "training"))
from tiny_world import write_dataset

from recsys.data import load_dataset


@pytest.mark.slow
def test_ddp_two_processes_on_gloo(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "world", with_images=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recsys.cli.train", "trainer=ddp", "trainer.accelerator=cpu",
           "trainer.devices=2", f"dataset_dir={data}", f"paths.output_dir={out}",
           "debug=limit_batches", "torch_threads=1",  # default id buckets: sparse gradients
           "datamodule.batch_size=32", "~callbacks.progress_bar", "name=ddp"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (out / "runs" / "synthetic" / "ddp").iterdir() if p.name != "latest"]
    assert (run.parent / "latest").resolve() == run.resolve()  # both ranks wrote to one run dir
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["val/recall@20"] <= 1.0 and "test/recall@20" in metrics
    assert metrics["train/samples_per_s"] > 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # 2 epochs x 3 batches (debug=limit_batches) per rank: both ranks stepped together
    assert ckpt["global_step"] == 6 and ckpt["epoch"] == 1
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr


def _train(tmp_path: Path, data: Path, name: str, *overrides: str) -> Path:
    """A ``recsys-train`` run without dropout (so that its steps are a function of the seed and
    the batches only) over all validation users; returns its run directory."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recsys.cli.train", "trainer.accelerator=cpu",
           f"dataset_dir={data}", f"paths.output_dir={out}", "debug=limit_batches",
           "trainer.limit_val_batches=null", "torch_threads=1", "~callbacks.progress_bar",
           "model.net.user_tower.id_dropout=0", "model.net.item_tower.id_dropout=0",
           "fusion.dropout=0", "datamodule.eval_batch_size=7", "test=false", f"name={name}",
           *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (out / "runs" / "synthetic" / name).iterdir() if p.name != "latest"]
    return run


@pytest.mark.slow
def test_ddp_steps_and_validation_equal_one_process_with_the_global_batch(tmp_path: Path) -> None:
    """Two ranks with half of each global batch of 32 end with the parameters of one process
    with the whole batch (in-batch negatives gathered across ranks), and their validation
    counts every user once (an odd count in batches of 7: ranks hold unequal shares)."""
    data = write_dataset(tmp_path / "world", with_images=False)
    one = _train(tmp_path, data, "one", "trainer=cpu", "datamodule.batch_size=32")
    two = _train(tmp_path, data, "two", "trainer=ddp", "trainer.devices=2",
                 "datamodule.batch_size=16")
    ckpts = [torch.load(run / "checkpoints" / "last.ckpt", weights_only=True) for run in (one, two)]
    assert ckpts[0]["global_step"] == ckpts[1]["global_step"] == 6
    first, second = (c["state_dict"] for c in ckpts)
    assert first.keys() == second.keys()
    for key, value in first.items():
        torch.testing.assert_close(second[key], value, rtol=1e-4, atol=1e-5, msg=key)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (one, two)]
    val = load_dataset(data).split("val")
    val_users = val[val["positive"].astype(bool)]["user_idx"].nunique()
    assert metrics[0]["val/users"] == metrics[1]["val/users"] == val_users
    assert val_users % 2 == 1
    for key in ("val/recall@20", "val/ndcg@20", "val/users_cold", "val/recall@20_cold"):
        assert metrics[1][key] == pytest.approx(metrics[0][key], abs=1e-6), key
