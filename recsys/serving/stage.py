"""The ``recsys-recommend`` stage and the pseudonymiser of original customer ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from recsys.data.privacy import pseudonymise
from recsys.errors import ConfigError
from recsys.serving.recommender import Recommender


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
