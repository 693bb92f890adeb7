"""`recsys-export` (ALS model) and `recsys-recommend` as processes: table output, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"recsys.cli.{module}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_export_then_recommend_then_refuse_a_corrupted_bundle(toy_dir: Path,
                                                              tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    proc = run("export", f"dataset_dir={toy_dir}", f"bundle_dir={bundle}", "model.kind=als",
               "model.als.iterations=3", "model.als.factors=8", f"paths.output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "ANN recall@10=" in proc.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["index"]["factory"].startswith("IVF") and manifest["user_tower"] is None
    common = [f"bundle_dir={bundle}", f"paths.output_dir={tmp_path}", "k=3"]
    proc = run("recommend", *common, "user=u0003", "columns=[category,colour]")
    assert proc.returncode == 0, proc.stderr
    assert "Top 3 for user u0003" in proc.stdout and "category" in proc.stdout
    assert proc.stdout.count("│") >= 3 * 4
    (bundle / "history.npz").write_bytes(b"garbage")
    proc = run("recommend", *common, "user=u0003")
    assert proc.returncode == 2 and "checksum mismatch" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_refuses_a_missing_bundle_and_bad_settings(tmp_path: Path) -> None:
    common = [f"paths.output_dir={tmp_path}", "apply_rules=false"]
    proc = run("serve", *common, f"bundle_dir={tmp_path / 'none'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "bundle directory not found" in line and str(tmp_path / "none") in line
    proc = run("serve", *common, "workers=0")
    assert proc.returncode == 2 and "workers=0 must be at least 1" in proc.stderr
