"""Training on each device: a bf16-mixed run tracks the fp32 run step by step; sparse embedding
tables train with sparse gradients on the device; validation's full ranking gives the same
metrics on CUDA as on CPU; a checkpoint trained in bf16 (on CPU or CUDA) is exported and served
on CPU; the CNN fine-tunes on CUDA. Each device test runs on CPU here and on CUDA when present
(``-m cuda``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.cli._app import CONFIG_DIR
from recsys.retrieval.trained import load_trained
from recsys.training.ranking import RankingMetrics
from recsys.training.train import train

Make = Callable[..., DictConfig]
SHORT = ("trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=1",
         "test=false")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
TRAINER = {"cpu": "trainer=cpu", "cuda": "trainer=gpu"}


class LossLog(pl.Callback):
    """Training loss of every step, the weights as training starts and the device each step ran
    on (Lightning moves the module and optimizer state back to the CPU when fit ends)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.devices: set[str] = set()
        self.start: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        self.devices.add(pl_module.device.type)


def _fit(make_cfg: Make, *overrides: str) -> tuple[LossLog, dict[str, Any], DictConfig]:
    log = LossLog()
    cfg = make_cfg(*SHORT, *overrides)
    _, objects = train(cfg, callbacks=[log])
    return log, objects, cfg


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_mixed_loss_tracks_fp32(make_cfg: Make, device: str) -> None:
    # without dropout: on CUDA a dropout kernel draws its mask differently for a bf16 tensor than
    # for a float32 one from the same seed (seen on an H100: step-0 losses 4.24 vs 4.08)
    quiet = (TRAINER[device], "fusion.dropout=0.0", "model.net.user_tower.id_dropout=0.0",
             "model.net.item_tower.id_dropout=0.0")
    fp32, objects, _ = _fit(make_cfg, *quiet, "trainer.precision=32-true")
    bf16, _, _ = _fit(make_cfg, *quiet, "trainer.precision=bf16-mixed")
    assert fp32.devices == bf16.devices == {device}
    assert objects["trainer"].precision == "32-true"
    assert len(fp32.losses) == len(bf16.losses) == 5
    assert all(math.isfinite(x) for x in bf16.losses)
    assert np.allclose(bf16.losses, fp32.losses, rtol=0.03), (bf16.losses, fp32.losses)
    assert bf16.losses != fp32.losses  # bf16 autocast really ran


MSE = ("model/loss=full_mse", "model.loss.positive_weight=2.0", "datamodule.examples=user",
       "model.net.item_tower.normalize=false", "model.net.temperature=1.0",
       "model.net.learn_temperature=false", "fusion=residual_mlp", "fusion.hidden=[16]",
       "fusion.dropout=0.0", "model.net.user_tower.id_dropout=0.0",
       "model.net.item_tower.id_dropout=0.0", "model.optimizer.embedding_weight_decay=0.01",
       "datamodule.batch_size=8")


@pytest.mark.parametrize("device", DEVICES)
def test_squared_loss_dot_product_towers_bf16_tracks_fp32(make_cfg: Make, device: str) -> None:
    # the full-catalogue squared loss between unnormalised towers with a residual MLP trains on
    # the device, and bf16 autocast tracks fp32 step by step there (same seed, no dropout; the
    # held-out items of examples=user are drawn by the device's generator, so the CPU's batches
    # differ from CUDA's and only runs on one device compare)
    fp32, objects, _ = _fit(make_cfg, *MSE, TRAINER[device], "trainer.precision=32-true")
    bf16, _, _ = _fit(make_cfg, *MSE, TRAINER[device], "trainer.precision=bf16-mixed")
    assert fp32.devices == bf16.devices == {device}
    assert objects["system"].net.similarity == "dot"
    assert len(fp32.losses) == len(bf16.losses) == 5
    assert all(math.isfinite(x) for x in bf16.losses + fp32.losses)
    assert np.allclose(bf16.losses, fp32.losses, rtol=0.03), (bf16.losses, fp32.losses)
    assert bf16.losses != fp32.losses  # bf16 autocast really ran


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_embedding_tables_train_with_sparse_gradients(make_cfg: Make, device: str) -> None:
    sparse_grads: list[tuple[bool, str]] = []
    state_devices: set[str] = set()
    trained: dict[str, torch.Tensor] = {}

    class Hooks(LossLog):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            super().on_train_start(trainer, pl_module)
            for m in pl_module.modules():
                if isinstance(m, torch.nn.Embedding) and m.sparse:
                    m.weight.register_hook(lambda g: sparse_grads.append((g.is_sparse, g.device.type)))

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            sparse = trainer.optimizers[0].sparse.state.values()
            state_devices.update(s["exp_avg"].device.type for s in sparse if "exp_avg" in s)
            trained.update({k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()})

    log = Hooks()
    cfg = make_cfg(*SHORT, TRAINER[device], "model.net.user_tower.sparse_min_rows=50")
    _, objects = train(cfg, callbacks=[log])
    system = objects["system"]
    optimizer = system.optimizers().optimizer
    assert type(optimizer).__name__ == "DenseSparseAdam"
    assert sparse_grads and all(g == (True, device) for g in sparse_grads)
    assert log.devices == {device} and state_devices == {device}
    tables = [n for n, m in system.named_modules() if isinstance(m, torch.nn.Embedding) and m.sparse]
    assert tables
    for name in tables:
        before, after = log.start[f"{name}.weight"], trained[f"{name}.weight"]
        changed = (after != before).any(1)
        assert torch.isfinite(after).all() and 0 < int(changed.sum()) < len(changed)  # touched rows only


@pytest.mark.cuda
def test_full_ranking_validation_on_cuda_equals_cpu(make_cfg: Make) -> None:
    _, objects, _ = _fit(make_cfg, "trainer=cpu")
    system, dm = objects["system"], objects["datamodule"]
    results = {}
    for accelerator in ("cpu", "gpu"):
        trainer = pl.Trainer(accelerator=accelerator, devices=1, logger=False, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False)
        (results[accelerator],) = trainer.validate(system, datamodule=dm, verbose=False)
    assert results["cpu"].keys() == results["gpu"].keys() and "val/recall@20" in results["cpu"]
    for key, value in results["cpu"].items():
        assert results["gpu"][key] == pytest.approx(value, abs=1e-4), key


@pytest.mark.parametrize("device", DEVICES)
def test_ranking_metrics_on_the_device_equal_cpu_with_ties(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (64, 300), generator=gen).float()  # many ties: the tie rule decides
    scores[:, 7] = -math.inf  # an excluded item
    targets = torch.rand(64, 300, generator=gen) < 0.03
    values = {}
    for dev in ("cpu", device):
        metric = RankingMetrics(k=20).to(dev)
        metric.update(scores.to(dev), targets.to(dev))
        values[dev] = {k: float(v) for k, v in metric.compute().items()}
    assert values["cpu"]["users"] > 40
    for key, value in values["cpu"].items():
        assert values[device][key] == pytest.approx(value, abs=1e-4), key


def _export_and_serve(ckpt: Path, bundle: Path, k: int = 5) -> tuple[Any, Any]:
    from recsys.cli.export import run_export
    from recsys.serving.recommender import Recommender

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("export", overrides=[f"model.checkpoint={ckpt}", f"bundle_dir={bundle}",
                                           "model.device=cpu", "index=flat", "batch_size=16",
                                           "user_tower=false"])
    out = run_export(cfg)
    rec = Recommender.load(out)
    return rec, rec.recommend(str(next(iter(rec._user_row))), k=k)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_trained_checkpoint_exports_and_serves_on_cpu(make_cfg: Make, tmp_path: Path, device: str
                                                           ) -> None:
    _, objects, cfg = _fit(make_cfg, TRAINER[device], "trainer.precision=bf16-mixed")
    assert objects["trainer"].precision == "bf16-mixed"
    ckpt = Path(cfg.run_dir) / "checkpoints" / "last.ckpt"
    rec, frame = _export_and_serve(ckpt, tmp_path / "bundle")
    assert len(frame) == 5 and frame["score"].is_monotonic_decreasing
    trained = load_trained(ckpt, device=device)  # the vectors where it was trained
    users = np.arange(len(rec.user_vectors))
    assert rec.user_vectors.dtype == np.float32
    assert np.allclose(rec.user_vectors, trained.user_embeddings(users), atol=1e-4)


def test_checkpoint_with_bf16_weights_loads_for_cpu_inference(make_cfg: Make, tmp_path: Path) -> None:
    _, _, cfg = _fit(make_cfg, "trainer.precision=bf16-mixed")
    ckpt = Path(cfg.run_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["state_dict"] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v
                           for k, v in state["state_dict"].items()}
    halved = tmp_path / "bf16.ckpt"
    torch.save(state, halved)
    full, half = load_trained(ckpt), load_trained(halved)
    users = np.arange(20)
    a, b = full.user_embeddings(users), half.user_embeddings(users)
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    assert np.allclose(a, b, atol=0.05) and ((a * b).sum(1) > 0.99).all()


@pytest.mark.parametrize("device", DEVICES)
def test_cnn_fine_tuning_steps_on_the_device(make_cfg: Make, device: str) -> None:
    log, objects, _ = _fit(make_cfg, TRAINER[device], "experiment=finetune_cnn", "image_encoder.image_size=32",
                           "image_encoder.resize_size=32", "datamodule.batch_size=16",
                           "datamodule.eval_batch_size=64", "datamodule.num_workers=0",
                           "trainer.limit_train_batches=2")
    encoder = objects["net"].image_encoder
    assert encoder is not None and all(math.isfinite(x) for x in log.losses) and len(log.losses) == 2
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and log.devices == {device}
    moved = [n for n, p in trainable
             if not torch.equal(p.detach().cpu(), log.start[f"net.image_encoder.{n}"])]
    assert moved  # the unfrozen CNN layers learned
