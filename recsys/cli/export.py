"""``recsys-export model.checkpoint=... index=ivf_flat``: write a serving bundle.

The model comes from a training checkpoint (through the one converter,
:mod:`recsys.retrieval.converter`) or from ALS factors fitted on the training positives; either
is converted to its retrieval model and written as a bundle (:mod:`recsys.serving.export`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import ConfigError
from recsys.retrieval.converter import load_checkpoint
from recsys.retrieval.embeddings import EmbeddingModel, StaticEmbeddings
from recsys.retrieval.index_spec import IndexSpec
from recsys.serving.bundle import MANIFEST
from recsys.serving.export import ExportSettings, export_bundle

MODEL_KINDS = ("checkpoint", "als")


def als_model(dataset: Any, cfg: dict[str, Any]) -> EmbeddingModel:
    """ALS factors fitted on the training positives, as static embeddings (no user tower)."""
    from recsys.evaluation.baselines import fit_als
    from recsys.evaluation.eval_data import interaction_matrix

    train = dataset.train[dataset.train["positive"].astype(bool)]
    history = interaction_matrix(train, len(dataset.users), len(dataset.items))
    ranker = fit_als(history, factors=int(cfg["factors"]),
                     regularization=float(cfg["regularization"]),
                     iterations=int(cfg["iterations"]), alpha=float(cfg["alpha"]),
                     seed=int(cfg["seed"]), threads=int(cfg["threads"]))
    return StaticEmbeddings(ranker.items, np.asarray(ranker.users), "dot")


def run_export(cfg: DictConfig) -> Path:
    """Export the configured model over its dataset into ``cfg.bundle_dir``."""
    model_cfg = as_dict(cfg.model, "model")
    kind = str(model_cfg["kind"])
    if kind not in MODEL_KINDS:
        raise ConfigError(f"model.kind={kind!r} is not one of {', '.join(MODEL_KINDS)}",
                          column="model.kind")
    settings = ExportSettings(
        batch_size=int(cfg.batch_size),
        history_splits=tuple(cfg.history_splits) if cfg.history_splits else None,
        item_columns=tuple(cfg.item_columns) if cfg.item_columns is not None else None,
        user_tower=bool(cfg.user_tower),
    )
    if kind == "checkpoint":
        if not model_cfg.get("checkpoint"):
            raise ConfigError("model.checkpoint is not set (or use model.kind=als)",
                              column="model.checkpoint")
        # known users' vectors read the bundle's history
        model = load_checkpoint(model_cfg["checkpoint"], str(model_cfg["device"]),
                                settings.history)
        dataset = load_dataset(getattr(model, "dataset_dir", None) or cfg.dataset_dir)
    else:
        dataset = load_dataset(cfg.dataset_dir)
        model = als_model(dataset, model_cfg["als"])
    config: dict[str, Any] = {"export": as_dict(cfg, "export"),
                              "model": getattr(model, "config", None)}
    spec = IndexSpec.from_config(as_dict(cfg.index, "index"))
    return export_bundle(model, dataset, spec, Path(cfg.bundle_dir), settings, config)


def task(cfg: DictConfig) -> None:
    """Export and print the bundle path with its measured ANN recall."""
    out = run_export(cfg)
    manifest = json.loads((out / MANIFEST).read_text())
    recall = manifest["ann_recall"]
    print(f"bundle: {out} ({manifest['index']['factory']}, {manifest['metric']}, "
          f"ANN recall@{recall['k']}={recall['recall']:.4f} with {recall['params']})")


def check_index(cfg: DictConfig) -> None:
    """``index.device=cuda`` without a GPU-enabled faiss stops before the model is embedded."""
    from recsys.retrieval.faiss_device import check_placement

    check_placement(str(cfg.index.get("device", "cpu")), bool(cfg.index.get("fallback", False)))


def main() -> None:
    run_app("export", task, check_index)


if __name__ == "__main__":
    main()
