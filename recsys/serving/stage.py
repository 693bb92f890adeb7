"""``recsys-export`` and ``recsys-recommend`` stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.data.privacy import pseudonymise
from recsys.errors import ConfigError
from recsys.retrieval.index_spec import IndexSpec
from recsys.serving.export import ExportSettings, export_bundle
from recsys.serving.recommender import Recommender
from recsys.serving.sources import als_model, check_kind, checkpoint_model


def run_export(cfg: DictConfig) -> Path:
    """Export the configured model over its dataset into ``cfg.bundle_dir``."""
    model_cfg = as_dict(cfg.model, "model")
    kind = check_kind(str(model_cfg["kind"]))
    settings = ExportSettings(
        batch_size=int(cfg.batch_size),
        history_splits=tuple(cfg.history_splits) if cfg.history_splits else None,
        item_columns=tuple(cfg.item_columns) if cfg.item_columns is not None else None,
        user_tower=bool(cfg.user_tower),
    )
    if kind == "checkpoint":
        model = checkpoint_model(model_cfg, settings.history)  # vectors read the bundle history
        dataset = load_dataset(getattr(model, "dataset_dir", None) or cfg.dataset_dir)
    else:
        dataset = load_dataset(cfg.dataset_dir)
        model = als_model(dataset, model_cfg["als"])
    config: dict[str, Any] = {"export": as_dict(cfg, "export"),
                              "model": getattr(model, "config", None)}
    spec = IndexSpec.from_config(as_dict(cfg.index, "index"))
    return export_bundle(model, dataset, spec, Path(cfg.bundle_dir), settings, config)


def pseudonymiser(privacy: DictConfig | None) -> Callable[[str], str] | None:
    """Original customer id -> the keyed pseudonym recsys-data stored (``preprocess.privacy``)."""
    if privacy is None or not privacy.pseudonymise:
        return None
    key, length = str(privacy.key), int(privacy.hash_length)
    return lambda user_id: str(pseudonymise(pd.Series([user_id]), key, length).iloc[0])


def run_recommend(cfg: DictConfig) -> tuple[Recommender, pd.DataFrame]:
    """Top-K for ``cfg.user`` (an id) or ``cfg.features`` (a new user's features)."""
    if (cfg.user is None) == (cfg.features is None):
        raise ConfigError("give exactly one of user=<id> or features={...}", column="user")
    query: Any = str(cfg.user) if cfg.user is not None else OmegaConf.to_container(
        cfg.features, resolve=True)
    if not isinstance(query, str | dict):
        raise ConfigError("features must be a mapping of feature names to values",
                          column="features")
    rec = Recommender.load(cfg.bundle_dir, unknown_user=str(cfg.unknown_user),
                           pseudonym=pseudonymiser(cfg.get("privacy")))
    frame = rec.recommend(query, k=int(cfg.k), exclude_purchased=bool(cfg.exclude_purchased))
    if cfg.columns is not None:
        keep = ["rank", "item_id", "score", *[c for c in cfg.columns if c in frame.columns]]
        frame = frame[keep]
    return rec, frame
