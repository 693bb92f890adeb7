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
