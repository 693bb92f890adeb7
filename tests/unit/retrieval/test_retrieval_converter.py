"""The converter on a real recsys-train checkpoint (images + social images, tiny world): one
retrieval model for export, evaluation and serving, with ablated vectors whose explanations add
up to the score; erasure resets the customer's id-embedding row of that checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from module_loading import load_module

from recsys.data import load_dataset
from recsys.evaluation.baselines import load_embedding_model
from recsys.retrieval.converter import ExplainableModel, convert, load_checkpoint
from recsys.retrieval.index_spec import load_spec
from recsys.retrieval.trained import USER_ID_TABLE, TrainedModel, reset_user_id_row, user_id_bucket
from recsys.serving import ExportSettings, Recommender, export_bundle
from recsys.training.train import train

ROOT = Path(__file__).resolve().parents[3]


def _tiny_world() -> Any:
    return load_module("tiny_world", ROOT / "tests/unit/training/tiny_world.py")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conv")
    _tiny_world().write_dataset(root)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "recsys" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[
            f"dataset_dir={root / 'data'}", f"paths.output_dir={root / 'out'}",
            "experiment=images_social",
            f"datamodule.image_features_dir={root / 'features' / 'tiny-fp' / 'v1'}",
            "model.net.item_tower.dim=16", "model.net.user_tower.id_buckets=101",
            "model.net.user_tower.id_dim=8", "model.net.item_tower.id_dim=8",
            "model.net.user_tower.history_dim=8", "model.net.item_tower.image_dim=8",
            "model.net.user_tower.social_dim=8", "fusion.hidden=[16]",
            "datamodule.batch_size=32", "datamodule.eval_batch_size=32", "~callbacks.progress_bar",
            "torch_threads=1", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1", "test=false"])
    GlobalHydra.instance().clear()
    train(cfg)
    return Path(cfg.run_dir) / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_one_converter_for_export_evaluation_and_serving(checkpoint: Path,
                                                         tmp_path: Path) -> None:
    model = load_checkpoint(checkpoint, "cpu")
    assert isinstance(model, TrainedModel) and isinstance(model, ExplainableModel)
    assert set(model.signals) == {"behaviour", "image", "social"}
    assert type(load_embedding_model(checkpoint, "cpu")) is TrainedModel  # evaluation's door
    ds = load_dataset(model.dataset_dir)
    users = np.arange(len(ds.users))
    np.testing.assert_allclose(model.ablated_user_embeddings(users, ()),
                               model.user_embeddings(users), atol=1e-5)
    np.testing.assert_allclose(model.ablated_item_embeddings(()), model.item_embeddings(),
                               atol=1e-5)
    # the tiny world has no fitted.json for a new user's features: no user tower here
    retrieval = convert(model, ds, load_spec("flat"), 32, user_tower=False)
    assert retrieval.ablations is not None
    assert retrieval.ablations.users.shape == (3, *retrieval.users.shape)
    settings = ExportSettings(batch_size=32, history_splits=None, item_columns=None,
                              user_tower=False)
    bundle = export_bundle(model, ds, load_spec("flat"), tmp_path / "b", settings, {})
    frame = Recommender.load(bundle).candidates(ds.users["user_id"].astype(str).tolist(), 5)
    total = frame[["base_score", "behaviour_score", "image_score", "social_score"]].sum(axis=1)
    np.testing.assert_allclose(total, frame["score"], atol=1e-5)
    for signal in ("behaviour", "image", "social"):
        assert (frame[f"{signal}_score"].abs() > 1e-6).mean() > 0.5, signal


@pytest.mark.slow
def test_erasure_resets_the_id_row_of_a_trained_checkpoint(checkpoint: Path,
                                                           tmp_path: Path) -> None:
    ckpt = tmp_path / "copy.ckpt"
    ckpt.write_bytes(checkpoint.read_bytes())
    model = load_checkpoint(ckpt, "cpu")
    assert isinstance(model, TrainedModel)
    ds = load_dataset(model.dataset_dir)
    bought = set(ds.train["user_idx"])
    user = int(next(u for u in ds.users["user_idx"] if u in bought))
    user_id = str(ds.users.set_index("user_idx").loc[user, "user_id"])
    bucket = int(model.store.user_bucket[user])
    assert bucket == user_id_bucket(user_id, 101) and bucket > 0  # the tables' hashing
    fingerprint = ds.manifest.get("data_fingerprint")
    assert reset_user_id_row(ckpt, user_id, "another dataset") is None
    assert reset_user_id_row(ckpt, user_id, fingerprint) == bucket
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    before = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert not state[USER_ID_TABLE][bucket].any()
    keep = [i for i in range(101) if i != bucket]
    assert torch.equal(state[USER_ID_TABLE][keep], before[USER_ID_TABLE][keep])
    reloaded = load_checkpoint(ckpt, "cpu")  # still a valid checkpoint of the dataset
    assert isinstance(reloaded, TrainedModel)
    assert not pd.isna(reloaded.user_embeddings(np.array([user]))).any()
