"""Past one machine: ``recsys-train`` under torchrun and under a SLURM allocation (the ranks
come from the launcher's environment, Lightning starts no processes of its own), and the
``hydra/launcher=slurm_ddp`` config of Hydra's submitit launcher."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "training"))
from tiny_world import write_dataset

from recsys.cli._app import CONFIG_DIR, _remote_launcher, parse_args

ARGS = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "debug=limit_batches",
        "torch_threads=1", "~callbacks.progress_bar", "datamodule.batch_size=16", "test=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_run(out: Path, name: str) -> dict[str, float]:
    runs = [p for p in (out / "runs" / "synthetic" / name).iterdir() if p.name != "latest"]
    assert len(runs) == 1, runs  # every rank wrote into one run directory
    return dict(json.loads((runs[0] / "metrics.json").read_text()))


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "world", with_images=False)
    out = tmp_path / "out"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nnodes=1", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "recsys.cli.train", *ARGS, f"dataset_dir={data}", f"paths.output_dir={out}",
           "name=torchrun"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    assert _one_run(out, "torchrun")["val/users"] > 0


@pytest.mark.slow
def test_slurm_allocation_two_tasks(tmp_path: Path) -> None:
    """Two tasks of one SLURM job step on one node, as srun starts them (submitit does the same
    for each job of ``hydra/launcher=slurm_ddp``)."""
    data = write_dataset(tmp_path / "world", with_images=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recsys.cli.train", *ARGS, "trainer.num_nodes=1",
           f"dataset_dir={data}", f"paths.output_dir={out}", "name=slurm"]
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "recsys-train",
               "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1",
               "SLURM_NODELIST": "127.0.0.1", "SLURM_PROCID": str(rank),
               "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0", "MASTER_PORT": port}
        env.pop("RECSYS_RUN_ID", None)
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp_path, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in logs[1]
    assert _one_run(out, "slurm")["val/users"] > 0


def test_slurm_launcher_config_follows_the_trainer() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        plain = compose("train", ["hydra/launcher=submitit_slurm"], return_hydra_config=True)
        cfg = compose("train", ["hydra/launcher=slurm_ddp", "trainer=gpu_ddp",
                                "trainer.devices=4", "trainer.num_nodes=3",
                                "hydra.launcher.partition=gpu"], return_hydra_config=True)
    assert plain.hydra.launcher._target_.endswith("SlurmLauncher")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == plain.hydra.launcher._target_
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 3)
    assert launcher.partition == "gpu" and cfg.trainer.accelerator == "gpu"


def test_a_slurm_multirun_is_checked_on_the_compute_nodes_only() -> None:
    """The submitting machine needs no GPU; each job checks its own machine."""
    assert _remote_launcher(parse_args(["-m", "hydra/launcher=slurm_ddp", "trainer=gpu_ddp"]))
    assert _remote_launcher(parse_args(["-m", "hydra/launcher=submitit_slurm"]))
    assert not _remote_launcher(parse_args(["hydra/launcher=slurm_ddp", "trainer=gpu_ddp"]))
    assert not _remote_launcher(parse_args(["-m", "trainer=gpu"]))
