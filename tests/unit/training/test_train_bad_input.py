"""User errors: unknown keys or groups, incompatible dimensions, empty training data, a NaN
loss, and checkpoints of another model, config or dataset."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from tiny_world import write_dataset

from recsys.cli._app import _precheck
from recsys.errors import ConfigError, DataError, ModelError
from recsys.training.callbacks import ObjectiveHistory
from recsys.training.train import train

Make = Callable[..., DictConfig]
SHORT = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "test=false")


@pytest.mark.parametrize("override", ["model.net.user_tower.no_such_key=1", "fusion=no_such",
                                      "experiment=no_such", "trainer=tpu"])
def test_unknown_key_or_group_is_a_config_error(override: str) -> None:
    with pytest.raises(ConfigError, match=r"train\.yaml"):
        _precheck("train", [override])


def test_cli_reports_an_unknown_key_without_traceback_and_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "recsys.cli.train", "model.nope=3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "model.nope" in proc.stderr.splitlines()[0]
    assert "Traceback" not in proc.stderr


def test_argument_unknown_to_the_class_is_a_config_error(make_cfg: Make) -> None:
    with pytest.raises(ConfigError, match=r"UserTower.*surprise"):
        train(make_cfg("+model.net.user_tower.surprise=1", *SHORT))


def test_incompatible_tower_dimensions_are_a_model_error(make_cfg: Make) -> None:
    with pytest.raises(ModelError, match=r"incompatible dimensions.*32-d.*16-d"):
        train(make_cfg("model.net.user_tower.dim=32", *SHORT))


def test_empty_training_split_is_a_data_error(make_cfg: Make, tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "empty", with_images=False, empty_train=True)
    with pytest.raises(DataError, match="no positive interactions"):
        train(make_cfg(*SHORT, dataset=data))


class _PoisonWeights(pl.Callback):
    """Turns the weights into NaN at the start of the second epoch."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(make_cfg: Make
                                                                           ) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "trainer.limit_train_batches=2",
                   "trainer.limit_val_batches=1", "test=false")
    last = Path(cfg.run_dir) / "checkpoints" / "last.ckpt"
    digests: list[str] = []

    class _Record(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule
                                 ) -> None:
            if trainer.current_epoch == 1:
                digests.append(hashlib.sha256(last.read_bytes()).hexdigest())

    with pytest.raises(ModelError, match=r"training loss became nan at epoch 1.*last good "
                                         r"checkpoint is kept at .*last\.ckpt"):
        train(cfg, callbacks=[_Record(), _PoisonWeights()])
    assert digests and hashlib.sha256(last.read_bytes()).hexdigest() == digests[0]
    state = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_checkpoint_of_another_config_or_dataset_is_refused(make_cfg: Make, tmp_path: Path
                                                            ) -> None:
    cfg = make_cfg(*SHORT)
    train(cfg)
    last = Path(cfg.run_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(ModelError, match=r"another model, config or dataset: net\.item_tower\.dim"):
        train(make_cfg(*SHORT, "model.net.item_tower.dim=8", f"ckpt_path={last}"))
    other = write_dataset(tmp_path / "other", seed=3, with_images=False)
    with pytest.raises(ModelError, match="data_fingerprint"):
        train(make_cfg(*SHORT, f"ckpt_path={last}", dataset=other))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        train(make_cfg(*SHORT, f"ckpt_path={junk}"))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, foreign)
    with pytest.raises(ModelError, match="not written by recsys-train"):
        train(make_cfg(*SHORT, f"ckpt_path={foreign}"))


def test_resume_without_a_last_checkpoint_is_refused(make_cfg: Make) -> None:
    with pytest.raises(ModelError, match="no run of this name has a last checkpoint"):
        train(make_cfg(*SHORT, "ckpt_path=last"))
    with pytest.raises(ModelError, match=r"no_such_run.*this run has no last checkpoint"):
        train(make_cfg(*SHORT, "ckpt_path=last", "run_id=no_such_run"))


def test_validating_on_a_refit_split_is_refused_before_the_run_starts(make_cfg: Make) -> None:
    cfg = make_cfg("datamodule.fit_splits=[train,val]", *SHORT)
    with pytest.raises(ConfigError, match="limit_val_batches"):
        train(cfg)
    assert not Path(cfg.run_dir).exists()


def test_a_refit_trains_on_train_and_val_and_tests_the_last_weights(make_cfg: Make) -> None:
    cfg = make_cfg("refit=train_val", "trainer.max_epochs=1", "trainer.limit_train_batches=2")
    metrics, built = train(cfg)
    assert built["datamodule"].tables.fit_splits == ("train", "val")
    assert "objective" not in metrics and not any(k.startswith("val/") for k in metrics)
    assert any(k.startswith("test/") for k in metrics)
    assert (Path(cfg.run_dir) / "checkpoints" / "last.ckpt").exists()


def test_refit_best_refits_for_the_validated_epochs_and_tests_that_model(make_cfg: Make) -> None:
    cfg = make_cfg("refit_best=true", "refit_window=1", "trainer.max_epochs=3",
                   "trainer.limit_train_batches=2", "callbacks.early_stopping.patience=5")
    seen = ObjectiveHistory(str(cfg.objective))
    metrics, built = train(cfg, callbacks=[seen])
    # one value per validation epoch, each that epoch's own (as the checkpoint callback saw it)
    assert seen.epochs == [0, 1, 2]
    assert max(seen.values) == pytest.approx(metrics["objective"])
    best = torch.load(Path(cfg.run_dir) / "checkpoints" / "best.ckpt", weights_only=True)
    assert metrics["refit_epochs"] == best["epoch"] + 1
    assert "objective" in metrics and any(k.startswith("test/") for k in metrics)
    assert built["datamodule"].tables.fit_splits == ("train", "val")
    assert built["trainer"].max_epochs == metrics["refit_epochs"]
    assert (Path(cfg.run_dir) / "refit" / "checkpoints" / "last.ckpt").exists()
    assert (Path(cfg.runs_root) / "latest").resolve() == Path(cfg.run_dir).resolve()
    with pytest.raises(ConfigError, match="refit_best"):
        train(make_cfg("refit_best=true", "trainer.limit_val_batches=0", *SHORT[:2]))


def test_the_refit_length_follows_a_smoothed_validation_curve() -> None:
    history = ObjectiveHistory("val/recall@20")
    assert history.smoothed_best_epochs(9) is None
    history.epochs = list(range(12))
    history.values = [.10, .20, .40, .21, .22, .30, .31, .32, .33, .32, .31, .30]
    assert history.smoothed_best_epochs(1) == 3  # the lone peak after epoch index 2
    assert history.smoothed_best_epochs(5) == 9  # the plateau: mean of epochs 6..10 is highest
    history.values = [.1, .3, .3]
    assert history.smoothed_best_epochs(1) == 2  # ties go to the earlier epoch
