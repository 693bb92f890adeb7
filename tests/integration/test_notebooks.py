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
    # "<config>:<override>" goes to that config only (notebooks 02-04 compose several configs).
    "02_images_and_training.ipynb": "data:data.generator.n_users=300 data:data.generator.n_items=150 "
    "data:data.generator.image_size=32 features:image_encoder.image_size=64 "
    "features:image_encoder.resize_size=73 features:torch_threads=1 features:num_workers=0 "
    "train:trainer.max_epochs=2 train:torch_threads=1",
    "03_retrieval_and_evaluation.ipynb": "data:data.generator.n_users=300 "
    "data:data.generator.n_items=150 data:data.generator.image_size=32 "
    "train:trainer.max_epochs=2 train:torch_threads=1",
    "04_marketing.ipynb": "data:data.generator.n_users=300 data:data.generator.n_items=150 "
    "data:data.generator.image_size=32",
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
