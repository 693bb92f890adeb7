"""No leakage from validation/test into features: every statistic is fitted on the training
split, so changing only the val/test rows (prices, dates, new items and users) moves nothing a
training example sees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from datafixtures import make_cfg

from recsys.data import load_dataset
from recsys.data.fit import first_seen
from recsys.data.fitted_io import load_fitted
from recsys.data.pipeline import build_dataset

PCA_ON = {"preprocess.pca.enabled": True, "data.tables.items.numeric": ["weight"]}


def _prepare(raw: Path) -> None:
    """A numeric item attribute (so PCA runs) and a few items without a list price."""
    items = pd.read_csv(raw / "items.csv", dtype=str)
    items["weight"] = [str(100 + 7 * i) for i in range(len(items))]
    items.loc[:4, "list_price"] = ""
    items.to_csv(raw / "items.csv", index=False)


def _change_held_out(raw: Path, val_start: pd.Timestamp) -> None:
    """Only val/test rows change: prices, dates (mirrored inside the held-out period, so the
    last day and hence the split stay), plus items and a user that appear only in test."""
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    day = pd.to_datetime(inter["day"])
    held = day >= val_start
    last = day.max()
    inter.loc[held, "amount"] = (inter.loc[held, "amount"].astype(float) * 3 + 400).round(2).astype(str)
    inter.loc[held, "day"] = (val_start + (last - day[held])).dt.strftime("%Y-%m-%d")
    items = pd.read_csv(raw / "items.csv", dtype=str)
    new_items = pd.DataFrame({"sku": ["90000", "90001"], "cat": ["hat", "hat"], "tags": ["z", "a|z"],
                              "list_price": ["", "999"], "img": ["", ""], "weight": ["1", "5000"]})
    pd.concat([items, new_items]).to_csv(raw / "items.csv", index=False)
    users = pd.read_csv(raw / "users.csv", dtype=str)
    new_user = pd.DataFrame({"cust": ["c999"], "age": ["104"], "sex": ["X"],
                             "email": ["new@example.org"], "newsletter": ["yes"]})
    pd.concat([users, new_user]).to_csv(raw / "users.csv", index=False)
    when = last.strftime("%Y-%m-%d")
    sold = pd.DataFrame({"cust": ["c999", "c001", "c002"], "sku": ["90000", "90000", "90001"],
                         "day": [when] * 3, "amount": ["700", "650", "3"], "ch": ["1", "2", "1"]})
    pd.concat([inter, sold]).to_csv(raw / "interactions.csv", index=False)


def _entities(table: pd.DataFrame, key: str, ids: pd.Series, columns: list[str]) -> pd.DataFrame:
    return _values(table[table[key].isin(ids)].sort_values(key)[columns].reset_index(drop=True))


def _values(df: pd.DataFrame) -> pd.DataFrame:
    """Categorical id columns as plain strings (their category lists name every id in the file)."""
    return df.astype({c: "string" for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})


def _arrays(path: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p, allow_pickle=False) for p in sorted(path.glob("fitted.*.npy"))}


def test_held_out_rows_do_not_move_training_features(raw_dir: Path, tmp_path: Path) -> None:
    _prepare(raw_dir)
    a = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "a", **PCA_ON)))
    _change_held_out(raw_dir, pd.Timestamp(a.manifest["split"]["val_start"]))
    b = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "b", **PCA_ON)))
    assert a.manifest["split"]["test_start"] == b.manifest["split"]["test_start"]
    assert not a.val.equals(b.val)  # the held-out rows did change
    pd.testing.assert_frame_equal(_values(a.train), _values(b.train))  # train rows, outlier flags included
    for name, key in (("users", "user_id"), ("items", "item_id")):
        ids = a.train[key]
        cols = list(getattr(a, name).columns)
        pd.testing.assert_frame_equal(_entities(getattr(a, name), key, ids, cols),
                                      _entities(getattr(b, name), key, ids, cols), obj=name)
    assert a.vocabs == b.vocabs and a.features == b.features
    assert "pca0" in a.features["items"]["numeric"]
    fitted_a, fitted_b = (json.loads((d.path / "fitted.json").read_text()) for d in (a, b))
    assert fitted_a == fitted_b
    arrays_a, arrays_b = _arrays(a.path), _arrays(b.path)
    assert arrays_a.keys() == arrays_b.keys() and "fitted.items.pca_components.npy" in arrays_a
    for name, value in arrays_a.items():
        np.testing.assert_array_equal(value, arrays_b[name], err_msg=name)


def test_items_first_sold_after_training_get_no_held_out_value(raw_dir: Path, tmp_path: Path) -> None:
    _prepare(raw_dir)
    a = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "a", **PCA_ON)))
    _change_held_out(raw_dir, pd.Timestamp(a.manifest["split"]["val_start"]))
    b = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "b", **PCA_ON)))
    fitted = load_fitted(b.path)
    new = b.items.set_index("item_id").loc[["90000", "90001"]]
    assert new["first_seen"].isna().all()  # sold only in test
    assert new.loc["90000", "price"] == fitted.item_price.global_median  # not its test price
    assert new.loc["90001", "price"] == 999.0  # a list price is kept
    assert (new["cat_idx"] == 0).all()  # "hat" is unseen in training
    assert list(new.loc["90000", "tags_multi"]) == [0]
    assert b.users.set_index("user_id")["gender_idx"].iloc[-1] == 0  # "X" only in test
    train_prices = b.train["price"]
    assert fitted.item_price.global_median == train_prices.median()
    first = b.train.groupby("item_idx")["timestamp"].min()
    np.testing.assert_array_equal(b.items.set_index("item_idx").loc[first.index, "first_seen"], first)


def test_new_raw_rows_encode_as_the_dataset(raw_dir: Path, tmp_path: Path) -> None:
    _prepare(raw_dir)
    a = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "a", **PCA_ON)))
    _change_held_out(raw_dir, pd.Timestamp(a.manifest["split"]["val_start"]))
    b = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "b", **PCA_ON)))
    raw = pd.read_csv(raw_dir / "items.csv", dtype={"sku": str}).rename(
        columns={"sku": "item_id", "list_price": "price"})  # as the source mapping names them
    encoded = b.fitted.apply_rows("items", raw)
    items = b.items.sort_values("item_idx").reset_index(drop=True)  # same order as items.csv
    cols = [c for c in items.columns if c.endswith(("_idx", "_z", "_mm", "_missing", "_outlier"))
            and c != "item_idx"] + ["price", "pca0"]
    pd.testing.assert_frame_equal(encoded[cols].reset_index(drop=True), items[cols])
    multi = [list(v) for v in encoded["tags_multi"]]
    assert multi == [list(v) for v in items["tags_multi"]]


def test_first_seen_is_null_without_timestamps() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"]})
    for ts in (pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"), pd.Series([None, None])):
        train = pd.DataFrame({"item_id": ["a", "a"], "timestamp": ts})
        seen = first_seen(items, train)
        assert seen.dtype == "datetime64[ns]" and seen.isna().all()
