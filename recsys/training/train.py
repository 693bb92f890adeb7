"""``train(cfg)``: build data, model, system and trainer from the Hydra config, fit and test.

Objects come from ``hydra.utils.instantiate`` over nested ``_target_`` nodes: ``cfg.datamodule``,
``cfg.model.net`` (towers, pooling and ``cfg.fusion`` as partials), ``cfg.model.loss`` /
``optimizer`` / ``scheduler`` / ``system``, ``cfg.callbacks``, ``cfg.logger`` and ``cfg.trainer``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor

import recsys
from recsys.config import as_dict
from recsys.data.atomic import write_json_atomic
from recsys.errors import ConfigError, DataError, ModelError, RecsysError
from recsys.evaluation.metrics import METRIC_NAMES
from recsys.models.two_tower import TwoTowerModel
from recsys.training.callbacks import ObjectiveHistory
from recsys.training.checkpoint import check_compatible, make_signature
from recsys.training.datamodule import RecsysDataModule
from recsys.training.image_inputs import find_features_dir
from recsys.training.optim import split_sparse
from recsys.training.rundir import RUN_ID_ENV, choose_run, link_latest, record_run
from recsys.training.store import FeatureStore
from recsys.training.system import TwoTowerSystem
from recsys.training.tables import FeatureTables

log = logging.getLogger(__name__)
REFIT_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "refit" / "train_val.yaml"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build(node: Any, **kwargs: Any) -> Any:
    """``instantiate`` that reports user errors as such: a RecsysError raised by a constructor
    passes through, a bad argument or target becomes a ConfigError naming the node."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, RecsysError):
            raise cause from None
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        raise ConfigError(f"cannot build {target}: {err}".replace("\n", " ")) from None


def _image_features_dir(cfg: DictConfig) -> str | None:
    value = cfg.datamodule.get("image_features_dir")
    if value != "auto":
        return None if value is None else str(value)
    from recsys.data import load_dataset

    ds = load_dataset(cfg.dataset_dir)
    encoder = OmegaConf.select(cfg, "image_encoder.name")
    if encoder is None:
        raise ConfigError("datamodule.image_features_dir=auto needs an image_encoder config",
                          column="image_encoder")
    return str(find_features_dir(Path(cfg.paths.features_dir), ds.path, ds.manifest, encoder))


def build_datamodule(cfg: DictConfig) -> RecsysDataModule:
    """The datamodule, set up (dataset loaded, feature tables built). Relative dataset and
    feature paths in ``cfg`` are made absolute, so the saved config works from anywhere."""
    cfg.dataset_dir = str(Path(cfg.dataset_dir).resolve())
    features = _image_features_dir(cfg)
    cfg.datamodule.image_features_dir = None if features is None else str(Path(features).resolve())
    dm: RecsysDataModule = build(cfg.datamodule)
    dm.setup("fit")
    assert dm.tables is not None
    if len(dm.targets["val"].users) == 0:
        raise DataError("the validation split has no positive interactions; full-ranking "
                        "validation needs some", file=str(Path(cfg.dataset_dir) / "val.parquet"),
                        column="positive")
    return dm


def _finetune_encoder(cfg: DictConfig, dm: RecsysDataModule) -> torch.nn.Module | None:
    """The CNN to fine-tune (``cfg.model.finetune``), with pixel readers set on ``dm``."""
    ft = cfg.model.get("finetune")
    if ft is None:
        return None
    from recsys.images.encoders import build_encoder
    from recsys.images.loading import LoadSettings
    from recsys.images.transforms import build_transform

    if "image_encoder" not in cfg:
        raise ConfigError("model.finetune needs an image_encoder config", column="image_encoder")
    encoder = build_encoder(cfg.image_encoder)
    encoder.set_trainable(str(ft.trainable), int(ft.get("last_n", 0)))
    readers = dm.pixel_readers(build_transform(cfg.image_encoder, train=True),
                               build_transform(cfg.image_encoder, train=False),
                               LoadSettings.from_config(as_dict(ft.loading, "model.finetune.loading")),
                               int(cfg.image_encoder.image_size))
    dm.enable_pixels(*readers)
    assert dm.tables is not None and dm.dataset is not None
    t = dm.tables
    if t.schema.image_dim and t.schema.image_dim != encoder.out_dim:
        raise ModelError(f"incompatible dimensions: cached image features are "
                         f"{t.schema.image_dim}-d, the fine-tuned encoder outputs "
                         f"{encoder.out_dim}-d", column="image_dim")
    n = t.schema.n_items
    dm.tables = dataclasses.replace(
        t, schema=dataclasses.replace(t.schema, image_dim=encoder.out_dim),
        item_image=np.zeros((n, encoder.out_dim), np.float32),
        item_image_mask=np.array([r is not None for r in readers[1].paths], dtype=bool))
    return encoder


def build_model(cfg: DictConfig, dm: RecsysDataModule
                ) -> tuple[TwoTowerModel, FeatureStore, dict[str, Any]]:
    """Network, feature store and compatibility signature for the datamodule's features."""
    encoder = _finetune_encoder(cfg, dm)
    tables: FeatureTables | None = dm.tables
    assert tables is not None and dm.dataset is not None
    net: TwoTowerModel = build(cfg.model.net, schema=tables.schema, image_encoder=encoder)
    if getattr(net.user_tower.hist_pool, "ordered", False) and not tables.timestamped:
        raise ConfigError(f"model.history_encoder reads the order of the history, but "
                          f"{cfg.dataset_dir} has no timestamps (manifest has_timestamps: "
                          f"false); use history_encoder=mean|attention or "
                          f"model.history_encoder.position=none", column="history_encoder")
    _check_sequence_examples(dm.examples, net, tables.timestamped, cfg.dataset_dir)
    dtype = DTYPES.get(str(cfg.model.image_dtype))
    if dtype is None:
        raise ConfigError(f"model.image_dtype must be one of {sorted(DTYPES)}",
                          column="image_dtype")
    store = FeatureStore(tables, image_dtype=dtype)
    net_config: Any = OmegaConf.to_container(cfg.model.net, resolve=True)
    signature = make_signature(tables.schema.to_dict(), net_config,
                               dm.dataset.manifest.get("data_fingerprint"))
    return net, store, signature


def _check_sequence_examples(examples: str, net: TwoTowerModel, timestamped: bool,
                             dataset_dir: str) -> None:
    """``examples: sequence`` needs timestamps and the causal Transformer with chronological
    positions or none (ages would be taken as of the window's last purchase, after most targets;
    recency ranks would put every training readout at a rank evaluation never reads)."""
    if examples != "sequence":
        return
    pool = net.user_tower.hist_pool
    if not timestamped:
        raise ConfigError(f"datamodule.examples=sequence predicts each purchase from the ones "
                          f"before it, but {dataset_dir} has no timestamps; use "
                          f"examples=position", column="datamodule.examples")
    if net.user_tower.kernel_dim > 0:
        raise ConfigError("datamodule.examples=sequence does not support the image kernel; set "
                          "model.net.item_tower.image_kernel_dim=0 or examples=position",
                          column="model.net.item_tower.image_kernel_dim")
    if pool is None or not hasattr(pool, "states"):
        raise ConfigError("datamodule.examples=sequence needs the causal Transformer history "
                          "encoder (model/history_encoder=transformer)",
                          column="model.history_encoder")
    if getattr(pool, "use_gap", False) or (getattr(pool, "use_rank", False)
                                           and not getattr(pool, "chronological", False)):
        raise ConfigError("datamodule.examples=sequence needs model.history_encoder.position="
                          "chronological or none: time gaps would be taken after most targets, "
                          "and a target's readout never sits at recency rank 0 as evaluation's "
                          "does", column="model.history_encoder.position")


def build_system(cfg: DictConfig, dm: RecsysDataModule) -> TwoTowerSystem:
    """Model and LightningModule for the datamodule's feature layout."""
    net, store, signature = build_model(cfg, dm)
    scheduler = build(cfg.model.scheduler) if cfg.model.get("scheduler") else None
    run_config = OmegaConf.to_container(cfg, resolve=True)
    factory = build(cfg.model.system, _partial_=True)  # plain dicts must not be instantiated
    try:
        system: TwoTowerSystem = factory(
            net=net, store=store, loss=build(cfg.model.loss), optimizer=build(cfg.model.optimizer),
            scheduler=scheduler, signature=signature, run_config=run_config)
    except TypeError as err:
        raise ConfigError(f"model.system: {err}") from None
    return system


def _group(node: DictConfig | None) -> list[Any]:
    if not node:
        return []
    return [build(v) for v in node.values() if isinstance(v, DictConfig) and "_target_" in v]


def _resume_path(cfg: DictConfig, wanted: Path | None, signature: dict[str, Any]) -> str | None:
    """The checkpoint to resume (``ckpt_path=last``: chosen by ``choose_run``), checked to belong
    to this model, config and dataset."""
    if wanted is None and cfg.get("ckpt_path") is not None:
        wanted = Path(str(cfg.ckpt_path))
    if wanted is None:
        return None
    check_compatible(wanted, signature)
    return str(wanted)


def check_refit(cfg: DictConfig, dm: RecsysDataModule) -> None:
    """Refuse validating on a split the model trains on (``datamodule.fit_splits`` with val),
    and ``refit_best`` without the validation that chooses its epochs."""
    if cfg.get("refit_best") and ("val" in dm.fit_splits
                                  or cfg.trainer.get("limit_val_batches") == 0):
        raise ConfigError("refit_best chooses the refit's epochs on validation: it needs "
                          "datamodule.fit_splits=[train] and validation on", column="refit_best")
    if "val" in dm.fit_splits and cfg.trainer.get("limit_val_batches") != 0:
        raise ConfigError("datamodule.fit_splits trains on val, so validating on it would read "
                          "its own training positives: set trainer.limit_val_batches=0 (or use "
                          "refit=train_val)", column="trainer.limit_val_batches")


def check_objective(cfg: DictConfig, system: TwoTowerSystem) -> None:
    """Refuse an objective that validation never logs (a sweep would optimise nothing)."""
    name, k = str(cfg.objective), system.k
    logged = {f"val/{m}@{k}{suffix}" for m in METRIC_NAMES for suffix in ("", "_cold")}
    if name not in logged:
        raise ConfigError(f"objective {name!r} is not a metric validation logs; choose one of "
                          f"{', '.join(sorted(logged))}", column="objective")


def objective_value(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, float]
                    ) -> float | None:
    """The validation objective of a fit (``cfg.objective``): the checkpoint callback's best
    score when it monitors it, else its last logged value; None when validation never ran."""
    name = str(cfg.objective)
    ckpt = trainer.checkpoint_callback
    best = getattr(ckpt, "best_model_score", None)
    if best is not None and getattr(ckpt, "monitor", None) == name:
        return float(best)
    if name not in metrics:
        log.warning("objective %s was not logged (validation off?); logged: %s", name,
                    ", ".join(sorted(metrics)))
        return None
    return float(metrics[name])


def _check_sparse_strategy(trainer: pl.Trainer, system: TwoTowerSystem) -> None:
    """NCCL cannot all-reduce sparse gradients: refuse GPU DDP with sparse embedding tables."""
    _, sparse = split_sparse(system.net)
    if sparse and trainer.world_size > 1 and trainer.strategy.root_device.type == "cuda":
        raise ConfigError("sparse embedding gradients cannot be all-reduced with NCCL; for "
                          "trainer=ddp on GPUs raise model.net.user_tower.sparse_min_rows above "
                          "the largest table", column="sparse_min_rows")


def _write_metrics(path: Path, metrics: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, metrics)


def train(cfg: DictConfig, callbacks: list[pl.Callback] | None = None
          ) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (and test) a two-tower model in its own run directory (``cfg.run_id`` is fixed here);
    returns the final metrics (``objective``: the validation objective, when validation ran)
    and the built objects."""
    pl.seed_everything(int(cfg.seed), workers=True)
    resume = choose_run(cfg)
    if int(cfg.get("torch_threads", 0)) > 0:
        torch.set_num_threads(int(cfg.torch_threads))
    dm = build_datamodule(cfg)
    check_refit(cfg, dm)
    system = build_system(cfg, dm)
    check_objective(cfg, system)
    loggers = _group(cfg.get("logger"))
    history = ObjectiveHistory(str(cfg.objective))
    all_callbacks = _group(cfg.get("callbacks")) + list(callbacks or []) + [history]
    if not loggers:  # Lightning refuses an LR monitor without a logger
        all_callbacks = [c for c in all_callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: pl.Trainer = build(cfg.trainer, callbacks=all_callbacks, logger=loggers or False)
    _check_sparse_strategy(trainer, system)
    ckpt_path = _resume_path(cfg, resume, system.hparams["signature"])
    if trainer.is_global_zero:
        assert dm.dataset is not None
        record_run(cfg, dm.dataset.manifest.get("data_fingerprint"),
                   None if ckpt_path is None else Path(ckpt_path))
    log.info("training %s (package %s) on %s in %s", cfg.get("name", "two_tower"),
             recsys.__version__, cfg.dataset_dir, cfg.run_dir)
    os.environ[RUN_ID_ENV] = str(cfg.run_id)
    try:
        trainer.fit(system, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    finally:
        os.environ.pop(RUN_ID_ENV, None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    objective = objective_value(cfg, trainer, metrics)
    if objective is not None:
        metrics["objective"] = objective
    refit = refit_config(cfg, trainer, history) \
        if cfg.get("refit_best") and not getattr(trainer, "fast_dev_run", False) else None
    if cfg.get("test") and refit is None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        trainer.test(system, datamodule=dm, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    built = {"trainer": trainer, "system": system, "datamodule": dm, "net": system.net}
    if refit is not None:
        refit_metrics, built = train(refit)
        metrics.update({k: v for k, v in refit_metrics.items() if k.startswith("test/")})
        metrics["refit_epochs"] = float(refit.trainer.max_epochs)
    if trainer.is_global_zero and not getattr(trainer, "fast_dev_run", False):
        _write_metrics(Path(cfg.run_dir) / "metrics.json", metrics)
        if not cfg.get("refit_of"):
            link_latest(cfg)
    return metrics, built


def refit_config(cfg: DictConfig, trainer: pl.Trainer, history: ObjectiveHistory) -> DictConfig:
    """``refit_best``: the config of a fresh fit on train + val, in ``<run_dir>/refit`` (see
    conf/refit), for as many epochs as the validated fit took to the best ``refit_window``-epoch
    moving average of the objective (``refit_window: 1``: to its best checkpoint)."""
    epochs = history.smoothed_best_epochs(int(cfg.get("refit_window", 1)))
    if epochs is None:
        raise ConfigError("refit_best needs a validated fit that logs the objective "
                          "(validation on)", column="refit_best")
    out = copy.deepcopy(cfg)
    with open_dict(out):  # the refit's settings come from conf/refit/train_val.yaml
        out.merge_with(OmegaConf.load(REFIT_CONFIG))
        out.refit_of = str(cfg.run_dir)
        out.run_id = f"{cfg.run_id}/refit"
        out.run_dir = str(Path(str(cfg.run_dir)) / "refit")
        out.ckpt_path, out.test = None, True
        out.trainer.max_epochs = epochs
    return out
