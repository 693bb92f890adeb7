"""k-core filtering over positive interactions, iterated to a fixed point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ratingfixtures import ratings_cfg, write_ratings

from recsys.data import load_dataset
from recsys.data.kcore import kcore_mask
from recsys.data.pipeline import build_dataset
from recsys.data.source_config import KCore
from recsys.errors import ConfigError


def _reference(pairs: list[tuple[int, int]], min_user: int, min_item: int) -> set[tuple[int, int]]:
    """A plain loop: drop one sparse user or item at a time until none is left."""
    kept = list(pairs)
    while True:
        users = pd.Series([u for u, _ in kept]).value_counts()
        items = pd.Series([i for _, i in kept]).value_counts()
        bad_u = set(users[users < min_user].index)
        bad_i = set(items[items < min_item].index)
        if not bad_u and not bad_i:
            return set(kept)
        victim = next(iter(bad_u)) if bad_u else None
        kept = [(u, i) for u, i in kept if u != victim] if victim is not None else [
            (u, i) for u, i in kept if i != next(iter(bad_i))]


@pytest.mark.parametrize(("seed", "min_user", "min_item"), [(0, 3, 3), (1, 5, 2), (2, 2, 6), (3, 0, 4)])
def test_mask_equals_one_at_a_time_reference(seed: int, min_user: int, min_item: int) -> None:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.6, 600) % 80
    items = rng.zipf(1.4, 600) % 60
    pairs = sorted(set(zip(users.tolist(), items.tolist(), strict=True)))
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    ok_u, ok_i, passes = kcore_mask(u, i, 80, 60, KCore(min_user, min_item))
    got = {p for p, keep in zip(pairs, ok_u[u] & ok_i[i], strict=True) if keep}
    assert got == _reference(pairs, min_user, min_item)
    assert got and passes >= 2  # the example needs more than one pass to reach the fixed point


def test_pipeline_filters_users_items_and_reports(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    cfg = ratings_cfg(root, tmp_path / "o", **{"data.kcore": {"min_user_interactions": 8,
                                                              "min_item_interactions": 6}})
    ds = load_dataset(build_dataset(cfg))
    rows = pd.concat([ds.train, ds.val, ds.test])
    pos = rows[rows["positive"]]
    assert pos.groupby("user_idx").size().min() >= 8 and pos.groupby("item_idx").size().min() >= 6
    # the users and items tables hold exactly the survivors; non-positives of survivors stay
    assert set(pos["user_idx"]) == set(range(ds.n_users)) and set(pos["item_idx"]) == set(range(ds.n_items))
    assert (~rows["positive"]).any()
    stars = pd.read_csv(root / "ratings.csv", dtype={"movie": str})
    steps = {(s["table"], s["step"]): s for s in json.loads((ds.path / "quality_report.json").read_text())["steps"]}
    kc = steps[("interactions", "k-core")]
    assert kc["rows_in"] == len(stars) and kc["rows_out"] == len(rows) < len(stars)
    assert steps[("users", "k-core")]["rows_out"] == ds.n_users < stars["user"].nunique()
    assert steps[("items", "k-core")]["rows_out"] == ds.n_items < stars["movie"].nunique()


def test_settings_leaving_no_users_name_the_keys(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    out = tmp_path / "o"
    cfg = ratings_cfg(root, out, **{"data.kcore": {"min_user_interactions": 1000, "min_item_interactions": 1}})
    with pytest.raises(ConfigError) as info:
        build_dataset(cfg)
    message = str(info.value)
    assert "data.kcore.min_user_interactions=1000" in message and "data.kcore.min_item_interactions=1" in message
    assert "leave no users" in message and info.value.file and info.value.file.endswith("ratings.csv")
    assert not out.exists() and "\n" not in message


@pytest.mark.parametrize("kcore", [{"min_user_interactions": -1}, {"min_user_interactions": 2.5},
                                   {"min_users": 3}])
def test_bad_kcore_config(tmp_path: Path, kcore: dict[str, object]) -> None:
    root = write_ratings(tmp_path / "raw")
    with pytest.raises(ConfigError, match="kcore"):
        build_dataset(ratings_cfg(root, tmp_path / "o", **{"data.kcore": kcore}))
