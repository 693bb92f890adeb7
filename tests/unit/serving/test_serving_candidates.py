"""Campaign candidates retrieved from a bundle for every user of the dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from recsys.cli.campaign import candidates_of
from recsys.errors import ConfigError
from recsys.serving.candidates import write_candidates


def test_write_candidates_for_all_users(bundle_dir: Path, toy_dir: Path, tmp_path: Path) -> None:
    path = write_candidates(bundle_dir, toy_dir, 3, True, tmp_path / "c.parquet")
    frame = pd.read_parquet(path)
    n_users = len(pd.read_parquet(toy_dir / "users.parquet"))
    assert frame["user_idx"].nunique() == n_users and frame.groupby("user_idx").size().eq(3).all()
    assert {"score", "rank", "behaviour_score", "image_score", "social_score"} <= set(frame.columns)
    assert frame.groupby("user_idx")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    bought = pd.read_parquet(toy_dir / "train.parquet").query("positive")[["user_idx", "item_idx"]]
    assert frame.merge(bought, on=["user_idx", "item_idx"]).empty  # purchased items excluded


def test_campaign_needs_candidates_or_bundle() -> None:
    cfg = OmegaConf.create({"candidates_path": None, "bundle_dir": None,
                            "candidates": {"source": "bundle"}})
    with pytest.raises(ConfigError, match="needs bundle_dir"):
        candidates_of(cfg)
