"""Every experiment composes from the real configs and runs fast_dev_run on CPU; a short run
learns; option variants (gated fusion, BPR, mixed negatives, sparse grads, TensorBoard) run."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from recsys.training.ranking import popularity_baseline
from recsys.training.train import train

Make = Callable[..., DictConfig]
EXTRA = {
    "id_only": [],
    "images": [],
    "images_social": [],
    "hm_images": [],
    "hm_two_tower": [],
    "hm_image_kernel": [],
    "finetune_cnn": ["image_encoder.image_size=32", "image_encoder.resize_size=32",
                     "datamodule.batch_size=16", "datamodule.eval_batch_size=64",
                     "datamodule.num_workers=0"],
}


@pytest.mark.parametrize("experiment", list(EXTRA))
def test_every_experiment_runs_fast_dev_run(make_cfg: Make, tiny_features: Path,
                                            experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}", "debug=fast_dev_run",
                   f"datamodule.image_features_dir={tiny_features}"
                   if "image" in experiment else "datamodule.image_features_dir=null",
                   *EXTRA[experiment])
    metrics, objects = train(cfg)
    assert math.isfinite(metrics["train/loss"])
    k = cfg.model.system.k
    assert 0.0 <= metrics[f"val/recall@{k}"] <= 1.0 and f"test/recall@{k}_cold" in metrics
    user_blocks = objects["net"].user_tower.block_names
    item_blocks = objects["net"].item_tower.block_names
    assert ("product_image" in item_blocks) == (
        experiment not in ("id_only", "hm_two_tower", "hm_image_kernel"))
    assert (objects["net"].item_tower.kernel is not None) == (experiment == "hm_image_kernel")
    assert ("social_image" in user_blocks) == (experiment == "images_social")
    assert ("attributes" in item_blocks) == (experiment != "id_only")
    assert (objects["net"].image_encoder is not None) == (experiment == "finetune_cnn")


def test_option_variants_run_and_write_checkpoints_and_logs(make_cfg: Make, tmp_path: Path
                                                            ) -> None:
    cfg = make_cfg("debug=limit_batches", "fusion=gated", "model/loss=bpr",
                   "model.system.num_negatives=16", "model.system.negative_distribution=popularity",
                   "model.net.user_tower.sparse_min_rows=50", "logger=tensorboard",
                   "model.net.learn_temperature=false")
    metrics, objects = train(cfg)
    run = Path(cfg.run_dir)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "metrics.json").is_file()
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert type(objects["system"].optimizers().optimizer).__name__ == "DenseSparseAdam"
    assert type(objects["net"].user_tower.fusion).__name__ == "GatedFusion"
    assert metrics["train/temperature"] == pytest.approx(0.05)
    best = objects["trainer"].checkpoint_callback.best_model_score
    assert metrics["objective"] == float(best) >= metrics["val/recall@20"]  # best, not last epoch


def test_objective_is_absent_without_validation(make_cfg: Make) -> None:
    metrics, _ = train(make_cfg("trainer.max_epochs=1", "trainer.limit_train_batches=2",
                                "trainer.limit_val_batches=0", "test=false",
                                "~callbacks.early_stopping", "~callbacks.model_checkpoint"))
    assert "objective" not in metrics and "train/loss" in metrics


def test_short_run_learns_well_above_popularity(make_cfg: Make) -> None:
    cfg = make_cfg("experiment=id_only", "trainer.max_epochs=12", "model.system.k=10",
                   "~callbacks.early_stopping", "model.optimizer.lr=0.01", "test=false")
    metrics, objects = train(cfg)
    dm = objects["datamodule"]
    popular = popularity_baseline(dm.tables, dm.targets["val"], k=10,
                                  exclude_history=objects["system"].exclude_history)
    assert metrics["val/recall@10"] > 1.5 * popular["recall"], (metrics, popular)


def test_residual_search_space_is_two_towers_with_the_shared_history_fixed() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from recsys.cli._app import CONFIG_DIR

    GlobalHydra.instance().clear()
    spaces = {}
    for name in ("two_tower", "two_tower_residual"):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"hparams_search={name}"], return_hydra_config=True)
        spaces[name] = dict(cfg.hydra.sweeper.params)
        GlobalHydra.instance().clear()
    key = "model.net.user_tower.history_source"
    assert spaces["two_tower_residual"].pop(key) == "choice(shared)"
    assert spaces["two_tower"].pop(key) == "choice(separate, shared)"
    assert spaces["two_tower_residual"] == spaces["two_tower"]


@pytest.mark.parametrize(("experiment", "dims"), [("ml1m_two_tower", (32, 32, 64)),
                                                  ("ml1m_two_tower_large", (128, 64, 128))])
def test_ml1m_experiments_compose_with_their_tables(experiment: str,
                                                    dims: tuple[int, int, int]) -> None:
    from hydra import compose, initialize_config_dir

    from recsys.cli._app import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=ml1m", f"experiment={experiment}"])
    net = cfg.model.net
    assert (net.user_tower.history_dim, net.item_tower.id_dim, net.item_tower.dim) == dims
    assert net.user_tower.dim == net.item_tower.dim and cfg.name == experiment
    assert cfg.model.loss._target_.endswith("FullSoftmaxLoss") and cfg.trainer.max_epochs == 12


def test_ml1m_squared_loss_experiment_composes_linear_dot_product_towers() -> None:
    from hydra import compose, initialize_config_dir

    from recsys.cli._app import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train",
                      overrides=["data=ml1m", "experiment=ml1m_two_tower_mse"])
    net = cfg.model.net
    assert cfg.model.loss._target_.endswith("FullSquaredLoss")
    assert not net.item_tower.normalize and not net.user_tower.normalize
    assert list(cfg.fusion.hidden) == [] and cfg.datamodule.examples == "user"
    assert cfg.model.history_encoder.count_power == 0.5 and not net.learn_temperature


def test_squared_loss_search_space_overrides_keys_of_its_experiment() -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from recsys.cli._app import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data=ml1m", "experiment=ml1m_two_tower_mse",
                                          "hparams_search=two_tower_mse"],
                      return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.params)
    assert cfg.hydra.sweeper.study_name == "two_tower_mse" and cfg.test is False
    assert "model.net.temperature" not in params and len(params) == 7
    for key in params:  # every swept key exists in the experiment (a typo would add a new key)
        assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None, key
    assert cfg.model.loss._target_.endswith("FullSquaredLoss")
