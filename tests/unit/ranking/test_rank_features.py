"""Pair features: the vectorised builder equals a plain per-pair loop, and rows after the
cut-off never change them (no label leakage)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.errors import DataError
from recsys.ranking.candidates import merge
from recsys.ranking.config import image_vectors
from recsys.ranking.features import Catalog, build_features
from recsys.ranking.history import history_as_of
from recsys.ranking.sources import PopularitySource, RepurchaseSource, SiblingSource

N_USERS, N_ITEMS = 30, 40


def random_frame(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user_idx": rng.integers(0, N_USERS, n),
        "item_idx": rng.integers(0, N_ITEMS, n),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), "D"),
    })


def catalog(seed: int) -> Catalog:
    rng = np.random.default_rng(seed)
    price = rng.uniform(5, 50, N_ITEMS)
    price[3] = np.nan
    return Catalog(groups=rng.integers(-1, 6, N_ITEMS), price=price,
                   user_values=rng.normal(size=(N_USERS, 1)), user_names=("age",),
                   item_values=rng.normal(size=(N_ITEMS, 1)), item_names=("margin",))


def features_for(frame: pd.DataFrame, cat: Catalog, cutoff: str):  # type: ignore[no-untyped-def]
    hist = history_as_of(frame, N_USERS, N_ITEMS, cutoff)
    users = np.arange(N_USERS)
    assert cat.groups is not None
    lists = {"rep": RepurchaseSource(hist, 10.0).top(users, 10),
             "sib": SiblingSource(hist, cat.groups, 10.0, 7.0).top(users, 10),
             "pop": PopularitySource(hist, 7.0).top(users, 10)}
    cands = merge(users, N_ITEMS, lists)
    return hist, cands, build_features(cands, hist, cat, (1.0, 7.0, 30.0))


def test_vectorised_features_equal_a_per_pair_loop() -> None:
    cat = catalog(1)
    assert cat.groups is not None and cat.price is not None
    hist, cands, feats = features_for(random_frame(0), cat, "2024-02-20")
    col = {n: feats.values[:, j] for j, n in enumerate(feats.names)}
    h = hist.frame.assign(age=hist.age_days)
    for p in range(0, len(cands), 7):
        u, i = int(cands.users[cands.rows[p]]), int(cands.items[p])
        mine = h[h.user_idx == u]
        same = mine[mine.item_idx == i]
        assert col["ui_count"][p] == len(same)
        assert np.isclose(col["ui_days_since"][p], same.age.min(), equal_nan=True)
        g = cat.groups[i]
        sib = mine[cat.groups[mine.item_idx.to_numpy()] == g] if g >= 0 else mine.iloc[:0]
        assert col["ug_count"][p] == len(sib)
        bought = h[h.item_idx == i]
        assert col["item_pop_7d"][p] == np.float32((bought.age <= 7).sum() / 7)
        assert col["user_count"][p] == len(mine)
        last = mine.age.min()  # relative to the user's last purchase; popularity back then
        assert np.isclose(col["ui_days_before_last"][p], same.age.min() - last, equal_nan=True)
        assert np.isclose(col["ug_days_before_last"][p], sib.age.min() - last, equal_nan=True)
        then = bought[(np.floor(bought.age) >= np.floor(last))
                      & (np.floor(bought.age) < np.floor(last) + 7)]
        assert np.isclose(col["item_pop_7d_at_user"][p], np.float32(len(then) / 7)
                          if len(mine) else np.nan, equal_nan=True)
        assert np.isclose(col["user_days_since_last"][p], mine.age.min(), equal_nan=True)
        median = np.nanmedian(cat.price[mine.item_idx]) if len(mine) else np.nan
        assert np.isclose(col["price_vs_user"][p], np.float32(cat.price[i] / median),
                          equal_nan=True, rtol=1e-5)
        assert col["user_age"][p] == np.float32(cat.user_values[u, 0])


def test_rows_after_the_cutoff_change_nothing() -> None:
    cat = catalog(2)
    frame = random_frame(3)
    before = frame[frame.timestamp < "2024-02-10"]
    _, cands_a, feats_a = features_for(before, cat, "2024-02-10")
    _, cands_b, feats_b = features_for(frame, cat, "2024-02-10")
    assert feats_a.names == feats_b.names
    np.testing.assert_array_equal(cands_a.keys, cands_b.keys)
    np.testing.assert_array_equal(feats_a.values, feats_b.values)


def test_image_similarity_to_the_latest_purchases(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    mask = rng.random(N_ITEMS) > 0.2
    np.save(tmp_path / "item_features.npy", np.where(mask[:, None], vectors, 0))
    np.save(tmp_path / "item_mask.npy", mask)
    images = image_vectors(tmp_path, N_ITEMS)
    cat = dataclasses.replace(catalog(1), images=images, image_recent=3)
    hist, cands, feats = features_for(random_frame(0), cat, "2024-02-20")
    sim = feats.values[:, feats.names.index("image_sim_recent")]
    h = hist.frame.assign(age=hist.age_days)
    for p in range(0, len(cands), 11):
        u, i = int(cands.users[cands.rows[p]]), int(cands.items[p])
        mine = h[(h.user_idx == u) & mask[h.item_idx.to_numpy()]]
        latest = mine.sort_values("age", kind="stable").head(3)
        profile = images[latest.item_idx.to_numpy()].sum(axis=0)
        norm = np.linalg.norm(profile)
        expected = float(profile @ images[i] / norm) if norm > 0 else 0.0
        assert np.isclose(sim[p], expected, atol=1e-5)
    np.save(tmp_path / "item_mask.npy", mask[:-1])
    with pytest.raises(DataError, match="do not cover"):
        image_vectors(tmp_path, N_ITEMS)
