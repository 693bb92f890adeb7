"""The default synthetic generator config, shrunk for fast tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from recsys.config import as_dict

YAML = Path(__file__).resolve().parents[3] / "recsys" / "conf" / "data" / "synthetic.yaml"


def tiny_config(n_users: int = 200, n_items: int = 100, **overrides: Any) -> dict[str, Any]:
    """conf/data/synthetic.yaml's generator block with a tiny world and 32 px images."""
    cfg = OmegaConf.load(YAML).generator
    base = {"n_users": n_users, "n_items": n_items, "image_size": 32, "image_workers": 1}
    for key, value in {**base, **overrides}.items():
        OmegaConf.update(cfg, key, value)
    return as_dict(cfg)
