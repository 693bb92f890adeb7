"""Fixtures of the training tests: the tiny world (see tiny_world.py) and composed configs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from tiny_world import write_dataset

CONF = str(Path(__file__).resolve().parents[3] / "recsys" / "conf")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tiny_root: Path) -> Path:
    return tiny_root / "data"


@pytest.fixture(scope="session")
def tiny_features(tiny_root: Path) -> Path:
    return tiny_root / "features" / "tiny-fp" / "v1"


@pytest.fixture
def make_cfg(tiny_dataset: Path, tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/train.yaml for the tiny dataset with small dims and a private run dir."""

    def _make(*overrides: str, dataset: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            return compose("train", overrides=[
                f"dataset_dir={dataset or tiny_dataset}", f"paths.output_dir={tmp_path}",
                "model.net.item_tower.dim=16", "model.net.user_tower.id_buckets=101",
                "model.net.user_tower.id_dim=8", "model.net.item_tower.id_dim=8",
                "model.net.user_tower.history_dim=8", "model.net.item_tower.image_dim=8",
                "model.net.user_tower.social_dim=8", "fusion.hidden=[16]",
                "datamodule.batch_size=32", "datamodule.eval_batch_size=32",
                "~callbacks.progress_bar", "torch_threads=1", *overrides,
            ])

    yield _make
    GlobalHydra.instance().clear()
