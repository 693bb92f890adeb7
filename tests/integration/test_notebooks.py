"""The numbered walkthroughs in notebooks/ execute top to bottom (outputs are stripped in git)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Small settings so each notebook runs in seconds; the notebooks read them from the environment.
SMALL = {
    "01_data.ipynb": "data.generator.n_users=300 data.generator.n_items=150 data.generator.image_size=32",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "strip outputs before committing"
    monkeypatch.setenv("RECSYS_ROOT", str(ROOT))
    monkeypatch.setenv("RECSYS_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_NB_OVERRIDES", SMALL.get(path.name, ""))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    assert os.listdir(tmp_path)
