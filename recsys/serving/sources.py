"""Where ``recsys-export`` gets its model: a training checkpoint or ALS factors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ConfigError
from recsys.evaluation.baselines import fit_als, load_embedding_model
from recsys.evaluation.eval_data import interaction_matrix
from recsys.evaluation.protocols import DatasetLike
from recsys.retrieval.embeddings import EmbeddingModel, StaticEmbeddings

MODEL_KINDS = ("checkpoint", "als")


def checkpoint_model(cfg: Mapping[str, Any],
                     history_splits: Sequence[str] | None = None) -> EmbeddingModel:
    """The trained model of ``cfg["checkpoint"]``; user vectors read the positives of
    ``history_splits`` (the checkpoint's test history when None)."""
    path = cfg.get("checkpoint")
    if not path:
        raise ConfigError("model.checkpoint is not set (or use model.kind=als)",
                          column="model.checkpoint")
    return load_embedding_model(Path(path), str(cfg["device"]), history_splits)


def als_model(dataset: DatasetLike, cfg: Mapping[str, Any]) -> EmbeddingModel:
    """ALS factors fitted on the training positives, as static embeddings (no user tower)."""
    train = dataset.train[dataset.train["positive"].astype(bool)]
    history = interaction_matrix(train, len(dataset.users), len(dataset.items))
    ranker = fit_als(history, factors=int(cfg["factors"]),
                     regularization=float(cfg["regularization"]),
                     iterations=int(cfg["iterations"]), alpha=float(cfg["alpha"]),
                     seed=int(cfg["seed"]), threads=int(cfg["threads"]))
    return StaticEmbeddings(ranker.items, np.asarray(ranker.users), "dot")


def check_kind(kind: str) -> str:
    """``kind`` if it is a known model source."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"model.kind={kind!r} is not one of {', '.join(MODEL_KINDS)}",
                          column="model.kind")
    return kind
