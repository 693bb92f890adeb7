"""`recsys-evaluate` on a toy dataset written to disk: report files, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.evaluation.toy import make_toy_dataset

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recsys.cli.evaluate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_evaluate_cli_writes_report_then_refuses_bad_input(tmp_path: Path) -> None:
    data = make_toy_dataset().write(tmp_path / "toy")
    out = tmp_path / "eval"
    common = [f"dataset_dir={data}", f"output_dir={out}", f"paths.output_dir={tmp_path}",
              "~eval.methods.bpr", "eval.methods.als.iterations=3",
              "eval.segments=[gender]", "eval.ks=[5,12,20]", "eval.min_segment_users=5", "eval.through_index=true",
              "data.exclude_history=true"]
    proc = run(*common, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "repurchase" in proc.stdout and "report:" in proc.stdout
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["methods"]) == {"popularity", "recent_popularity", "repurchase", "itemknn",
                                   "ease", "edlae", "als"}
    assert doc["exclude_purchased"] is True  # the data config's exclusion rule
    assert (out / "report.md").is_file()
    bad = run(*common, "eval.main_k=7", cwd=ROOT)
    assert bad.returncode == 2 and "main_k=7" in bad.stderr and "Traceback" not in bad.stderr
    fresh = tmp_path / "eval_bad"
    bad = run(*common, f"output_dir={fresh}", "eval.methods.edlae.dropout=1.0", cwd=ROOT)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "column 'eval.methods.edlae.dropout': EASE dropout must lie in [0, 1), got 1.0" \
        in bad.stderr.strip().splitlines()[-1]
    assert not fresh.exists()  # nothing half-written
    (data / "test.parquet").write_bytes(b"not parquet")
    bad = run(*common, cwd=ROOT)
    assert bad.returncode == 2 and "test.parquet" in bad.stderr
