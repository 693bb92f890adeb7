"""A non-editable install (``pip install --target``, a built wheel's layout) gives working CLIs from
any directory: the configs ship inside the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_package_runs_its_apps_from_another_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "outputs", "build", "dist", "*.egg-info", "__pycache__", "tests",
        "notebooks", ".*_cache"))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--no-index", "--quiet", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert (target / "recsys" / "conf" / "train.yaml").is_file()
    assert (target / "recsys" / "conf" / "hparams_search" / "two_tower.yaml").is_file()
    shutil.rmtree(src)  # nothing may be read from the source tree
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(target / "bin" / "recsys-data"), "--cfg", "job", "--resolve",
                            "data=synthetic", "data.generator.n_users=40"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr[-3000:]
    assert "n_users: 40" in where.stdout and "outputs/data/synthetic" in where.stdout
    probe = subprocess.run([sys.executable, "-c", "import recsys.cli._app as a; print(a.CONFIG_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == str(target / "recsys" / "conf")
    bad = subprocess.run([str(target / "bin" / "recsys-train"), "-m", "hparams_search=nosuch"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
