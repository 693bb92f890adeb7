"""Feature tables and the device-side feature store: history without leakage, consent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_world import FEATURE_DIM, write_dataset

from recsys.data import ProcessedDataset, load_dataset
from recsys.errors import ConfigError, DataError
from recsys.training.image_inputs import find_features_dir, load_image_arrays
from recsys.training.store import FeatureStore
from recsys.training.tables import FeatureTables, build_tables, eval_targets


def _tables(dataset: Path, features: Path | None, history: int = 4) -> FeatureTables:
    ds = load_dataset(dataset)
    images = load_image_arrays(features, len(ds.users), len(ds.items)) if features else None
    return build_tables(ds, images, history_len=history, social_len=3, user_buckets=101,
                        multi_hot_len=4)


def test_training_history_holds_only_earlier_baskets(tiny_dataset: Path) -> None:
    tables = _tables(tiny_dataset, None)
    store = FeatureStore(tables)
    train = load_dataset(tiny_dataset).train
    assert int(train["positive"].sum()) == tables.n_train
    users, items = store.train_inputs(torch.arange(tables.n_train))
    assert items.tolist() == tables.seq_items.tolist()
    days, seq_users, seq_items = tables.seq_days, tables.seq_users, tables.seq_items
    for p in np.random.default_rng(0).choice(tables.n_train, 60, replace=False):
        earlier = np.flatnonzero((seq_users == seq_users[p]) & (days < days[p]))
        recent = earlier[np.argsort(-days[earlier], kind="stable")][:4]
        got = users.hist_items[p]
        assert int((got > 0).sum()) == len(recent)  # at most history_len, none from the basket
        got_items = sorted(int(i) - 1 for i in got if i > 0)
        if len(earlier) <= 4:
            assert got_items == sorted(seq_items[earlier].tolist())
        ages = users.hist_age[p][got > 0]
        expected = np.log1p(days[p] - days[recent])
        assert sorted(ages.tolist()) == pytest.approx(sorted(expected.tolist()), abs=1e-4)


def _positives(ds: ProcessedDataset, splits: tuple[str, ...], user: int) -> list[int]:
    frames = [ds.split(s) for s in splits]
    rows = pd.concat([f[f["positive"].astype(bool) & (f["user_idx"] == user)] for f in frames])
    return sorted(rows["item_idx"].astype(int).tolist())


def test_validation_history_is_the_whole_training_history_only(tiny_dataset: Path) -> None:
    tables = _tables(tiny_dataset, None, history=50)
    ds = load_dataset(tiny_dataset)
    inputs = FeatureStore(tables).user_inputs(torch.arange(len(ds.users)), "val")
    for u in range(len(ds.users)):
        lo, hi = tables.user_offsets[u], tables.user_offsets[u + 1]
        got = sorted(int(i) - 1 for i in inputs.hist_items[u] if i > 0)
        assert got == sorted(tables.seq_items[lo:hi].tolist()) == _positives(ds, ("train",), u)


def test_test_history_adds_validation_purchases(tiny_dataset: Path) -> None:
    tables = _tables(tiny_dataset, None, history=50)
    ds = load_dataset(tiny_dataset)
    store = FeatureStore(tables)
    users = torch.arange(len(ds.users))
    test_in, val_in = store.user_inputs(users, "test"), store.user_inputs(users, "val")
    val_buyers = set(ds.val.loc[ds.val["positive"].astype(bool), "user_idx"].astype(int))
    assert val_buyers
    for u in range(len(ds.users)):
        got = sorted(int(i) - 1 for i in test_in.hist_items[u] if i > 0)
        assert got == _positives(ds, ("train", "val"), u)
        if u in val_buyers:  # the most recent history entry is a validation purchase
            assert not torch.equal(test_in.hist_items[u], val_in.hist_items[u])
            last_val = ds.val[(ds.val["user_idx"] == u) & ds.val["positive"].astype(bool)]
            assert int(test_in.hist_items[u, 0]) - 1 in set(last_val["item_idx"].astype(int))
    # ages are measured from the end of the validation period, not the training one
    assert store.eval_cutoff["test"] > store.eval_cutoff["val"] == float(tables.seq_days.max())


def test_an_evaluation_history_must_precede_its_split(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    for bad in ({"val": ["train", "val"]}, {"test": ["train", "test"]}, {"val": []},
                {"train": ["train"]}):
        with pytest.raises(ConfigError, match="eval_history"):
            build_tables(ds, None, history_len=4, social_len=3, user_buckets=101,
                         multi_hot_len=4, eval_history=bad)


def test_social_images_only_for_consenting_users(tiny_dataset: Path, tiny_features: Path) -> None:
    tables = _tables(tiny_dataset, tiny_features)
    users = load_dataset(tiny_dataset).users.sort_values("user_idx")
    consent = users["social_image_consent"].to_numpy()
    offsets = np.load(tiny_features / "user_image_offsets.npy")
    has_images = np.diff(offsets) > 0
    assert (has_images & ~consent).any() and (has_images & consent).any()
    store = FeatureStore(tables)
    inputs = store.user_inputs(torch.arange(len(users)))
    visible = inputs.social_mask.any(1).numpy()
    assert not visible[~consent].any()
    assert np.array_equal(visible, has_images & consent)
    assert torch.all(inputs.social[torch.as_tensor(~consent)] == 0)
    assert inputs.social.shape[-1] == FEATURE_DIM


def test_cold_items_and_users_get_the_cold_bucket(tiny_dataset: Path) -> None:
    tables = _tables(tiny_dataset, None)
    ds = load_dataset(tiny_dataset)
    trained = set(ds.train.loc[ds.train["positive"], "item_idx"])
    cold = np.array([i not in trained for i in range(len(ds.items))])
    assert cold.any()
    assert np.array_equal(tables.cold_items, cold)
    assert np.array_equal(tables.item_bucket == 0, cold)
    targets = eval_targets(ds.val, len(ds.items))
    assert np.isin(targets.items, np.flatnonzero(cold)).any()  # val has cold targets


def test_items_under_the_id_min_count_share_the_cold_bucket(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    count = build_tables(ds, None, 4, 0, 101, 4).item_count
    threshold = int(np.median(count[count > 0])) + 1  # leaves warm items on both sides
    tables = build_tables(ds, None, 4, 0, 101, 4, item_id_min_count=threshold)
    assert ((count > 0) & (count < threshold)).any() and (count >= threshold).any()
    assert np.array_equal(tables.item_bucket == 0, count < threshold)
    own = tables.item_bucket > 0
    assert np.array_equal(tables.item_bucket[own], np.flatnonzero(own) + 1)
    assert np.array_equal(tables.cold_items, count == 0)  # the evaluation's slice is unchanged


def test_empty_training_split_is_a_data_error(tmp_path: Path) -> None:
    data = write_dataset(tmp_path, with_images=False, empty_train=True)
    with pytest.raises(DataError, match=r"train\.parquet.*no positive interactions"):
        _tables(data, None)


def test_features_of_another_dataset_are_refused(tiny_dataset: Path, tiny_features: Path) -> None:
    ds = load_dataset(tiny_dataset)
    with pytest.raises(DataError, match=r"item_features has shape"):
        load_image_arrays(tiny_features, len(ds.users), len(ds.items) + 1)


def test_auto_features_dir_picks_this_dataset_and_encoder(tmp_path: Path,
                                                          tiny_features: Path) -> None:
    manifest = {"name": "shop", "data_fingerprint": "abcdef0123456789"}
    base = tmp_path / "shop-abcdef012345"
    for variant, encoder in (("a", "resnet18"), ("b", "efficientnet_lite0")):
        (base / variant).mkdir(parents=True)
        (base / variant / "report.json").write_text(f'{{"encoder": "{encoder}"}}')
    assert find_features_dir(tmp_path, tmp_path / "ds", manifest, "efficientnet_lite0").name == "b"
    with pytest.raises(DataError, match="run recsys-features"):
        find_features_dir(tmp_path, tmp_path / "ds", manifest, "resnet50")
    assert pd.api.types.is_bool_dtype(np.load(tiny_features / "item_mask.npy"))


def test_a_training_only_history_shares_the_training_sequence(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    tables = _tables(tiny_dataset, None)  # default eval_history: val reads train
    assert tables.eval_history["val"].items is tables.seq_items
    store = FeatureStore(tables)
    buffers = dict(store.named_buffers())
    assert not any(name.startswith("val_hist") for name in buffers)
    seq = (store.seq_items, store.seq_days, store.user_offsets)
    assert all(a is b for a, b in zip(store.history_arrays("val"), seq, strict=True))
    test_hist = store.history_arrays("test")  # train + val: its own arrays
    assert all(t is buffers[f"test_hist_{part}"]
               for t, part in zip(test_hist, ("items", "days", "offsets"), strict=True))
    assert all(t.data_ptr() != s.data_ptr() for t, s in zip(test_hist, seq, strict=True))
    assert len(test_hist[0]) > len(store.seq_items)
    assert store.state_dict() == {}  # non-persistent: checkpoints hold none of them
    store.to(torch.float64)  # moving the module keeps the sharing
    assert store.history_arrays("val")[1] is store.seq_days
    assert store.seq_days.dtype == torch.float64
    with pytest.raises(KeyError, match="train"):
        store.history_arrays("train")

    custom = build_tables(ds, None, history_len=4, social_len=3, user_buckets=101,
                          multi_hot_len=4, eval_history={"test": ["train"]})
    store = FeatureStore(custom)
    assert store.history_arrays("test")[0] is store.seq_items
    assert not any("_hist_" in name for name, _ in store.named_buffers())
    assert store.eval_cutoff["test"] == store.eval_cutoff["val"] == float(custom.seq_days.max())


def test_a_refit_trains_on_train_and_validation_positives(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    refit = build_tables(ds, None, history_len=50, social_len=3, user_buckets=101,
                         multi_hot_len=4, fit_splits=["train", "val"])
    assert refit.fit_splits == ("train", "val")
    for u in range(len(ds.users)):
        lo, hi = refit.user_offsets[u], refit.user_offsets[u + 1]
        assert sorted(refit.seq_items[lo:hi].tolist()) == _positives(ds, ("train", "val"), u)
    # the test history (train + val) is the training sequence itself; val still reads train
    assert refit.eval_history["test"].items is refit.seq_items
    assert refit.eval_history["val"].splits == ("train",)
    for bad in (["val"], ["train", "test"], ["train", "val", "test"]):
        with pytest.raises(ConfigError, match="fit_splits"):
            build_tables(ds, None, history_len=4, social_len=3, user_buckets=101,
                         multi_hot_len=4, fit_splits=bad)
