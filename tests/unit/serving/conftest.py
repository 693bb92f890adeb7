"""A toy dataset on disk, a small model with a TorchScript-able user tower, and its bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_fixtures import ToyModel, export_settings

from recsys.evaluation.toy import ToyDataset, make_toy_dataset
from recsys.retrieval.index_spec import load_spec
from recsys.serving import export_bundle


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset().write(tmp_path_factory.mktemp("data") / "toy")


@pytest.fixture(scope="session")
def toy_ds(toy_dir: Path) -> ToyDataset:
    ds = make_toy_dataset()
    ds.path = toy_dir
    return ds


@pytest.fixture(scope="session")
def toy_model(toy_ds: ToyDataset) -> ToyModel:
    return ToyModel(toy_ds)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, toy_ds: ToyDataset,
               toy_model: ToyModel) -> Path:
    """A bundle with an exact (Flat) index, so results can be checked against brute force."""
    out = tmp_path_factory.mktemp("bundles") / "toy"
    return export_bundle(toy_model, toy_ds, load_spec("flat"), out,
                         export_settings(), {"test": True})
