"""The export / recommend stages driven by the composed Hydra configs (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.cli._app import CONFIG_DIR
from recsys.cli.export import run_export
from recsys.errors import ConfigError
from recsys.serving.stage import run_recommend


def config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("index", ["flat", "ivf_flat", "hnsw"])
def test_export_als_bundle_with_each_index_config(toy_dir: Path, tmp_path: Path,
                                                  index: str) -> None:
    cfg = config("export", [f"dataset_dir={toy_dir}", f"bundle_dir={tmp_path / 'b'}",
                            "model.kind=als", "model.als.iterations=2", "model.als.factors=8",
                            f"index={index}", "index.recall_queries=30"])
    out = run_export(cfg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metric"] == "ip" and manifest["similarity"] == "dot"
    assert manifest["ann_recall"]["n_queries"] == 30
    assert manifest["ann_recall"]["recall"] >= 0.95
    assert manifest["index"]["factory"] == {"flat": "Flat", "ivf_flat": "IVF2,Flat",
                                            "hnsw": "HNSW32"}[index]
    rec_cfg = config("recommend", [f"bundle_dir={out}", "user=u0001", "k=5",
                                   "columns=[category]"])
    _, frame = run_recommend(rec_cfg)
    assert frame.columns.tolist() == ["rank", "item_id", "score", "category"]
    assert len(frame) == 5


def test_stage_config_errors(toy_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.checkpoint is not set"):
        run_export(config("export", [f"dataset_dir={toy_dir}", f"bundle_dir={tmp_path}/b"]))
    with pytest.raises(ConfigError, match=r"model\.kind"):
        run_export(config("export", [f"dataset_dir={toy_dir}", "model.kind=magic"]))
    with pytest.raises(ConfigError, match="exactly one of"):
        run_recommend(config("recommend", [f"bundle_dir={tmp_path}"]))
