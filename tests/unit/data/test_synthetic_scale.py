"""The vectorised path: a world with >100k interactions (images off) builds in seconds."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf

from recsys.data.synthetic import build_world, parse_config

YAML = Path(__file__).resolve().parents[3] / "recsys" / "conf" / "data" / "synthetic.yaml"


def test_100k_interactions_in_a_few_seconds() -> None:
    cfg = OmegaConf.load(YAML).generator
    OmegaConf.update(cfg, "n_users", 4000)
    OmegaConf.update(cfg, "n_items", 20000)
    OmegaConf.update(cfg, "images", False)
    w = parse_config(cfg)
    t0 = time.process_time()  # CPU time: robust to other processes sharing the cores
    world = build_world(w)
    elapsed = time.process_time() - t0
    inter = world.tables["interactions"]
    assert len(inter) >= 100_000
    assert world.images == []
    assert elapsed < 5.0, f"{len(inter)} interactions took {elapsed:.1f}s of CPU"
    # Every item id and user id used is in range, and the log stays time-sorted at scale.
    assert inter["timestamp"].is_monotonic_increasing
    assert inter["item_id"].nunique() > 10_000
