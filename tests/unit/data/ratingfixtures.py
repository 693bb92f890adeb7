"""A tiny ratings source without timestamps (MovieLens-like) written as CSV into a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[3] / "recsys" / "conf"


def write_ratings(root: Path, ratings: pd.DataFrame | None = None, seed: int = 0) -> Path:
    """ratings.csv (user, movie, stars), users.csv and movies.csv under ``root``; by default 40
    users rating 3 to 25 of 30 movies with 1-5 stars, in a shuffled file order."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if ratings is None:
        rows = []
        for u in range(40):
            for m in rng.choice(30, size=int(rng.integers(3, 26)), replace=False):
                rows.append((f"u{u:02d}", f"{m:04d}", int(rng.integers(1, 6))))
        ratings = pd.DataFrame(rows, columns=["user", "movie", "stars"]).sample(frac=1.0, random_state=seed)
    ratings.to_csv(root / "ratings.csv", index=False)
    users = sorted(set(ratings["user"]))
    pd.DataFrame({"user": users, "sex": rng.choice(["F", "M"], len(users))}).to_csv(root / "users.csv", index=False)
    movies = sorted(set(ratings["movie"]))
    pd.DataFrame({"movie": movies, "genres": rng.choice(["a|b", "b", "c"], len(movies))}).to_csv(
        root / "movies.csv", index=False)
    return root


def ratings_source(root: Path) -> dict[str, Any]:
    return {
        "name": "stars",
        "source": "generic",
        "root": str(root),
        "positive_events": ["purchase"],
        "tables": {
            "interactions": {"path": "ratings.csv", "columns": {"user_id": "user", "item_id": "movie"},
                             "rating": {"column": "stars", "threshold": 3}},
            "users": {"path": "users.csv", "columns": {"user_id": "user", "gender": "sex"}},
            "items": {"path": "movies.csv", "columns": {"item_id": "movie"}, "multi_hot": {"genres": "|"}},
        },
    }


def ratings_cfg(root: Path, out: Path, split: str = "per_user_random", **overrides: Any) -> DictConfig:
    """The data-stage config over :func:`ratings_source` with the real preprocess/split YAML;
    ``overrides`` are dotted keys (``data.kcore.min_user_interactions=5``)."""
    cfg = OmegaConf.create({
        "data": ratings_source(root),
        "preprocess": OmegaConf.load(CONF / "preprocess" / "default.yaml"),
        "split": OmegaConf.load(CONF / "split" / f"{split}.yaml"),
        "output_dir": str(out),
    })
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg
