"""scripts/gpu_check.sh on a machine without CUDA: the CPU part runs, then one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_without_cuda_stops_after_the_cpu_part_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "GPU_CHECK_DIR": str(tmp_path), "VENV": str(Path(sys.executable).parents[1])}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "CPU checks passed" in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device"), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (tmp_path / "cpu_tests.log").is_file() and not (tmp_path / "cuda_tests.log").exists()
