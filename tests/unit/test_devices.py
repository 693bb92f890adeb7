"""A GPU trainer the machine cannot run stops before Lightning builds it: no CUDA, or
``trainer.devices`` beyond the GPUs present (one line on the CLI, exit 2, nothing written)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recsys.devices import check_trainer_devices
from recsys.errors import ConfigError


@pytest.mark.parametrize(("accelerator", "devices", "gpus"), [
    ("cpu", 8, 0), ("auto", 2, 0), ("gpu", 1, 1), ("gpu", 2, 2), ("cuda", [1], 2), ("gpu", "0,1", 2),
    ("gpu", -1, 1), ("gpu", "auto", 4),
])
def test_runnable_trainers_pass(accelerator: str, devices: object, gpus: int) -> None:
    check_trainer_devices(accelerator, devices, cuda_devices=gpus)


def test_gpu_trainer_without_cuda_names_the_key_and_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.accelerator.*needs CUDA.*trainer=cpu"):
        check_trainer_devices("gpu", 1, cuda_devices=0)


@pytest.mark.parametrize(("devices", "asked"), [(2, "2 GPUs"), ("4", "4 GPUs"), ([0, 3], "GPU index 3"),
                                                ("0,1,2", "3 GPUs")])
def test_more_devices_than_gpus_is_a_config_error(devices: object, asked: str) -> None:
    with pytest.raises(ConfigError, match=rf"trainer\.devices.*asks for {asked} but this machine has 1"):
        check_trainer_devices("gpu", devices, cuda_devices=1)


def test_devices_that_are_not_a_count_or_indices() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.devices must be"):
        check_trainer_devices("gpu", "many", cuda_devices=1)


def _train_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECSYS_OUTPUT_DIR": str(tmp_path / "out")}
    return subprocess.run([sys.executable, "-m", "recsys.cli.train", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], tmp_path: Path, key: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and key in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()  # Hydra wrote no run directory


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_trainer_gpu_without_cuda_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    _one_line_exit_2(_train_cli(tmp_path, "trainer=gpu"), tmp_path, "trainer.accelerator=gpu needs CUDA")


@pytest.mark.cuda
def test_cli_more_devices_than_gpus_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = _train_cli(tmp_path, "trainer=gpu", f"trainer.devices={torch.cuda.device_count() + 1}")
    _one_line_exit_2(proc, tmp_path, "trainer.devices")
