"""A serving bundle evaluated as a method: its user vectors searched through its own index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.errors import ModelError
from recsys.evaluation.eval_data import EvalData
from recsys.evaluation.guard import check_same_data


def bundle_ranker(path: str | Path, data: EvalData) -> Any:
    """The :class:`recsys.serving.Recommender` of the bundle at ``path`` (it ranks known users
    by ``top_k(user_idx, k, exclude)``), refused unless it was exported from the evaluated
    dataset (same data fingerprint, same catalogue)."""
    from recsys.serving.bundle import read_manifest
    from recsys.serving.recommender import Recommender

    root = Path(path)
    check_same_data("bundle", root, read_manifest(root).get("data_fingerprint"), data)
    recommender = Recommender.load(root)
    if recommender.n_items != data.n_items:
        raise ModelError(f"bundle {root} ranks {recommender.n_items} items, the dataset has "
                         f"{data.n_items}")
    return recommender
