"""Retrieval candidates of a serving bundle for every known user, as the rules layer reads them."""

from __future__ import annotations

import os
from pathlib import Path

from recsys.data import load_dataset
from recsys.serving.recommender import Recommender


def write_candidates(bundle_dir: Path, dataset_dir: Path, k: int, exclude_purchased: bool, path: Path) -> Path:
    """Top-``k`` candidates (with behaviour / image / social contributions) of every user of the
    dataset, written atomically to ``path`` (Parquet) for ``recsys-campaign``."""
    users = load_dataset(dataset_dir).users["user_id"].astype(str).tolist()
    frame = Recommender.load(bundle_dir).candidates(users, k, exclude_purchased=exclude_purchased)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
