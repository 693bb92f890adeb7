"""Resuming from ``last.ckpt`` and reloading a trained model for retrieval and export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from recsys.data import load_dataset
from recsys.errors import ModelError
from recsys.retrieval.trained import load_trained
from recsys.training.train import train

Make = Callable[..., DictConfig]
SHORT = ("trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "test=false")


class _FirstWeights(pl.Callback):
    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


def test_resume_continues_from_the_newest_run_of_that_name(make_cfg: Make) -> None:
    older = make_cfg("trainer.max_epochs=1", *SHORT)
    train(older)
    first = make_cfg("trainer.max_epochs=1", *SHORT)
    train(first)
    assert first.run_dir != older.run_dir  # every run has its own directory
    info = json.loads((Path(first.run_dir) / "run.json").read_text())
    assert info["run_id"] == first.run_id and info["package_version"]
    assert info["data_fingerprint"] and len(info["config_hash"]) == 16
    assert info["config_hash"] == json.loads((Path(older.run_dir) / "run.json").read_text()
                                             )["config_hash"]
    assert (Path(first.run_dir) / "config.yaml").is_file()
    assert (Path(first.runs_root) / "latest").resolve() == Path(first.run_dir).resolve()
    last = Path(first.run_dir) / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] == 3
    cfg = make_cfg("trainer.max_epochs=2", "ckpt_path=last", *SHORT)
    seen = _FirstWeights()
    _, objects = train(cfg, callbacks=[seen])
    assert cfg.run_dir == first.run_dir  # the newest run, not the older one
    trainer = objects["trainer"]
    assert trainer.current_epoch == 2 and trainer.global_step == 6  # one more epoch, not two
    for key, value in saved["state_dict"].items():
        assert torch.equal(seen.weights[key], value), key
    after = torch.load(last, weights_only=True)  # rewritten each epoch, improved or not
    assert after["epoch"] == 1 and after["global_step"] == 6
    assert json.loads((Path(cfg.run_dir) / "run.json").read_text())["resumed_from"] == str(last)
    named = make_cfg("trainer.max_epochs=2", "ckpt_path=last", f"run_id={older.run_id}", *SHORT)
    train(named)  # run_id=... resumes that run instead of the newest
    assert named.run_dir == older.run_dir


def test_load_trained_reproduces_the_trained_vectors(make_cfg: Make, tiny_features: Path) -> None:
    # a separate history table, so that the eager user vectors need no history vectors (the
    # shared history's export is checked in tests/unit/retrieval/test_retrieval_converter.py)
    cfg = make_cfg("experiment=images_social", f"datamodule.image_features_dir={tiny_features}",
                   "model.net.user_tower.history_source=separate",
                   "model.net.user_tower.history_residual=false", "refit_best=false",
                   "trainer.max_epochs=2", *SHORT)
    _, objects = train(cfg)
    ckpt = Path(objects["trainer"].checkpoint_callback.best_model_path)
    trained = load_trained(ckpt)
    items = trained.item_embeddings(batch_size=7)
    assert items.shape == (48, 16) and items.dtype == np.float32
    assert np.allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    assert trained.similarity == "cosine" and trained.dataset_dir == Path(cfg.dataset_dir)
    assert trained.config["name"] == "images_social"

    state = torch.load(ckpt, weights_only=True)["state_dict"]
    net = objects["net"]
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    store = objects["system"].store
    net.eval()
    users = np.array([0, 5, 17, 79])
    with torch.no_grad():
        expected = net.user(store.user_inputs(torch.as_tensor(users))).numpy()
        expected_items = net.item(store.item_inputs(torch.arange(48))).numpy()
    assert np.allclose(trained.user_embeddings(users), expected, atol=1e-5)
    assert np.allclose(items, expected_items, atol=1e-5)
    # test-time vectors read validation purchases; an evaluation of val reads train only
    before_val = load_trained(ckpt, history_splits=["train"]).user_embeddings(users)
    with torch.no_grad():
        val_vectors = net.user(store.user_inputs(torch.as_tensor(users), "val")).numpy()
    assert np.allclose(before_val, val_vectors, atol=1e-5)
    val = load_dataset(Path(cfg.dataset_dir)).val
    bought = np.isin(users, val.loc[val["positive"].astype(bool), "user_idx"].to_numpy())
    assert bought.any()
    assert not np.allclose(before_val[bought], expected[bought], atol=1e-4)

    scripted = torch.jit.script(trained.user_tower_for_export())
    feats = trained.encode_user_features(users)
    assert list(feats) == ["ids", "cat", "num", "hist_items", "hist_age", "social", "social_mask"]
    assert np.allclose(scripted(*feats.values()).numpy(), expected, atol=1e-5)

    parts = trained.signal_contributions(users, np.array([1, 2, 3, 4]))
    assert set(parts) == {"score", "behaviour", "product_image", "social_image"}
    assert np.allclose(parts["score"], (expected * expected_items[[1, 2, 3, 4]]).sum(1), atol=1e-5)
    with pytest.raises(ModelError, match="user_idx"):
        trained.user_embeddings(np.array([80]))


def test_the_image_kernel_trains_and_exports(make_cfg: Make, tiny_features: Path) -> None:
    cfg = make_cfg("experiment=images_social", f"datamodule.image_features_dir={tiny_features}",
                   "model.net.user_tower.history_source=shared", "refit_best=false",
                   "model.net.item_tower.image_kernel_dim=8", "trainer.max_epochs=2", *SHORT)
    _, objects = train(cfg)
    trained = load_trained(Path(objects["trainer"].checkpoint_callback.best_model_path))
    items = trained.item_embeddings()
    assert items.shape == (48, 16 + 8)
    # every item vector has norm sqrt(2), so a cosine index ranks as the trained dot product
    assert np.allclose(np.linalg.norm(items, axis=1), 2**0.5, atol=1e-5)
    users = np.array([0, 5, 17, 79])
    vectors = trained.user_embeddings(users)
    assert np.abs(vectors[:, 16:]).sum() > 0  # the users' image profiles
    scripted = torch.jit.script(trained.user_tower_for_export())
    feats = trained.encode_user_features(users)
    assert np.allclose(scripted(*feats.values()).numpy(), vectors, atol=1e-5)


def test_load_trained_refuses_a_changed_dataset(make_cfg: Make, tmp_path: Path,
                                                tiny_dataset: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    cfg = make_cfg("trainer.max_epochs=1", *SHORT, dataset=copy)
    train(cfg)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["data_fingerprint"] = "changed"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="changed since this checkpoint"):
        load_trained(Path(cfg.run_dir) / "checkpoints" / "last.ckpt")


def test_load_trained_encodes_the_catalogue_with_the_fine_tuned_cnn(make_cfg: Make) -> None:
    cfg = make_cfg("experiment=finetune_cnn", "image_encoder.image_size=32",
                   "image_encoder.resize_size=32", "datamodule.batch_size=16",
                   "datamodule.eval_batch_size=64", "datamodule.num_workers=0",
                   "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                   "trainer.limit_val_batches=1", "test=false")
    _, objects = train(cfg)
    system = objects["system"].eval()
    trained = load_trained(Path(cfg.run_dir) / "checkpoints" / "last.ckpt")
    assert trained.net.image_encoder is not None
    with torch.no_grad():
        expected = system.encode_catalogue().numpy()  # CNN features of every product image
    assert np.allclose(trained.item_embeddings(), expected, atol=1e-4)
    assert trained.store.item_image_mask.all()
