"""Per-user random split: RecBole's ratio split with random order, seeded, in the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ratingfixtures import ratings_cfg, write_ratings

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset
from recsys.data.split import _recbole_counts, split_interactions
from recsys.errors import ConfigError


def _recbole_calcu_split_ids(tot: int, ratios: list[float]) -> list[int]:
    """RecBole's Dataset._calcu_split_ids (recbole/data/dataset/dataset.py), as counts per part."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


@pytest.mark.parametrize("ratios", [[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.7, 0.3, 0.0], [0.5, 0.25, 0.25]])
def test_rounding_equals_recbole(ratios: list[float]) -> None:
    total = sum(ratios)
    norm = [r / total for r in ratios]
    tot = np.arange(1, 301)
    got = _recbole_counts(tot, np.asarray(norm))
    assert got.tolist() == [_recbole_calcu_split_ids(int(t), norm) for t in tot]


def _frame(n_users: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, n_users)
    users = np.repeat([f"u{u}" for u in range(n_users)], sizes)
    return pd.DataFrame({
        "user_id": users,
        "item_id": [f"i{k}" for k in range(len(users))],
        "timestamp": pd.Series(pd.NaT, index=range(len(users)), dtype="datetime64[ns]"),
        "event": np.where(rng.random(len(users)) < 0.8, "purchase", "view"),
    })


def test_each_users_positives_split_by_the_fractions() -> None:
    inter = _frame(200, 0)
    cfg = {"kind": "per_user_random", "seed": 7, "ratios": [0.8, 0.1, 0.1]}
    frames, info = split_interactions(inter, cfg, positive_events=["purchase"])
    assert info["seed"] == 7 and info["ratios"] == [0.8, 0.1, 0.1] and info["kind"] == "per_user_random"
    assert sum(len(f) for f in frames.values()) == len(inter)
    for event in ("purchase", "view"):  # non-positives are split the same way, as their own group
        sub = inter[inter["event"] == event]
        expected = _recbole_counts(sub.groupby("user_id").size().to_numpy(), np.array([0.8, 0.1, 0.1]))
        got = np.stack([frames[s][frames[s]["event"] == event].groupby("user_id").size()
                        .reindex(sorted(sub["user_id"].unique()), fill_value=0).to_numpy()
                        for s in ("train", "val", "test")], axis=1)
        order = np.argsort(sub.groupby("user_id").size().index.to_numpy())
        assert (got == expected[order]).all()


def test_seeded_and_random_order() -> None:
    inter = _frame(100, 1)
    cfg = {"kind": "per_user_random", "seed": 3, "ratios": [0.8, 0.1, 0.1]}
    a, _ = split_interactions(inter, cfg)
    b, _ = split_interactions(inter, cfg)
    c, _ = split_interactions(inter, {**cfg, "seed": 4})
    assert all(a[s].index.equals(b[s].index) for s in a)
    assert not a["test"].index.equals(c["test"].index)
    # random order: the test rows are not each user's last rows in the file
    last = inter.groupby("user_id").tail(1).index
    assert 0 < len(a["test"].index.intersection(last)) < len(a["test"])


@pytest.mark.parametrize("ratios", [[0.8, 0.2], [0.8, -0.1, 0.3], "0.8,0.1,0.1", [0, 0, 0]])
def test_bad_ratios(ratios: object) -> None:
    with pytest.raises(ConfigError, match=r"split\.ratios"):
        split_interactions(_frame(5, 0), {"kind": "per_user_random", "seed": 0, "ratios": ratios})


def test_pipeline_records_the_split(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    ds = load_dataset(build_dataset(ratings_cfg(root, tmp_path / "o")))
    split = ds.manifest["split"]
    assert split["kind"] == "per_user_random" and split["seed"] == 2020 and split["ratios"] == [0.8, 0.1, 0.1]
    assert split["train_rows"] == len(ds.train) and split["test_rows"] == len(ds.test) > 0
    pos = {s: getattr(ds, s).query("positive") for s in ("train", "val", "test")}
    per_user = pd.concat([pos[s].groupby("user_idx").size().rename(s) for s in pos], axis=1).fillna(0)
    tot = per_user.sum(axis=1).to_numpy().astype(int)
    assert (per_user.to_numpy() == _recbole_counts(tot, np.array([0.8, 0.1, 0.1]))).all()
