"""UserFeatureEncoder: lookups built once, kept out of the serialised form, pickle-safe; numeric
features through the dataset's saved statistics, reproducing its encoded values exactly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recsys.data import load_dataset
from recsys.data.fitted import Fence, NumericParams, Pca, Scaler
from recsys.data.pipeline import build_dataset
from recsys.errors import DataError
from recsys.retrieval.user_features import UserFeatureEncoder, user_encoder

CONF = Path(__file__).resolve().parents[3] / "recsys" / "conf"


def _encoder() -> UserFeatureEncoder:
    return UserFeatureEncoder(
        {"gender": ["?", "f", "m"]},
        NumericParams(scalers={"age": Scaler(False, 30.0, 10.0, 0.0, 1.0)}),
        history_len=3, item_ids=["a", "b", "c"])


def test_lookups_are_built_once_and_survive_a_round_trip() -> None:
    enc = _encoder()
    assert enc.item_index is enc.item_index and enc.item_index == {"a": 0, "b": 1, "c": 2}
    assert enc.category_index is enc.category_index
    assert enc.category_index == {"gender": {"?": 0, "f": 1, "m": 2}}
    again = UserFeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())), enc.item_ids)
    assert again == enc


def test_encode_and_history_use_the_lookups() -> None:
    enc = _encoder()
    _, cat, num, hist, age, _, _ = enc.encode([{"gender": "m", "age": 40, "history": ["c"]},
                                               {"gender": "x", "history": [("a", 2.0)]}])
    assert cat[:, 0].tolist() == [2, 0]
    assert num[0, 0].item() == pytest.approx(1.0) and num[1, 0].item() == 0.0
    assert hist[:, 0].tolist() == [3, 1] and age[1, 0].item() > 0
    assert enc.history_items({"history": ["b", ("c", 1)]}) == [1, 2]
    with pytest.raises(DataError, match="unknown item id 'z'"):
        enc.history_items({"history": ["z"]})
    copy = pickle.loads(pickle.dumps(enc))
    assert copy.history_items({"history": ["c"]}) == [2]


def test_saved_parameters_clip_fill_log_scale_and_project() -> None:
    params = NumericParams(
        fences={"spend": Fence(0.0, 400.0)}, outlier_action="clip",
        fill={"age": 35.0, "spend": 20.0},
        scalers={"age": Scaler(False, 40.0, 12.0, 18.0, 60.0),
                 "spend": Scaler(True, 3.0, 1.5, 0.0, 6.0),
                 "pca0": Scaler(False, 0.0, 2.0, -3.0, 6.0)},
        pca=Pca(["age", "spend"], np.array([0.1, -0.2]), np.array([[0.6, -0.8]])))
    enc = UserFeatureEncoder({}, params)
    assert enc.known == ["age", "spend"]
    num = enc.encode([{"age": 52, "spend": 900.0}, {}])[2].numpy()
    z_age, z_spend = (52 - 40) / 12, (np.log1p(400.0) - 3) / 1.5  # 900 clipped to 400
    pca = 0.6 * (z_age - 0.1) - 0.8 * (z_spend + 0.2)
    np.testing.assert_allclose(num[0], [z_age, z_spend, pca / 2], rtol=1e-6)
    filled = [(35 - 40) / 12, (np.log1p(20.0) - 3) / 1.5]  # gaps take the training median
    np.testing.assert_allclose(num[1, :2], filled, rtol=1e-6)
    again = UserFeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())), [])
    np.testing.assert_array_equal(again.encode([{"age": 52, "spend": 900.0}])[2].numpy(), num[:1])


def _tiny_source(root: Path) -> dict[str, object]:
    """Users with two numeric attributes (one with gaps), items and two months of purchases."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    users = pd.DataFrame({"cust": [f"c{i}" for i in range(40)], "age": rng.integers(18, 80, 40),
                          "sex": rng.choice(["F", "M"], 40), "spend": rng.uniform(0, 900, 40)})
    users["age"] = users["age"].astype(float)
    users.loc[[2, 5], "age"] = np.nan
    users.to_csv(root / "users.csv", index=False)
    pd.DataFrame({"sku": [f"s{i}" for i in range(12)], "list_price": rng.uniform(5, 50, 12)}
                 ).to_csv(root / "items.csv", index=False)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, 300), unit="D")
    pd.DataFrame({"cust": rng.choice(users["cust"], 300), "sku": rng.choice([f"s{i}" for i in range(12)], 300),
                  "day": days.strftime("%Y-%m-%d"), "amount": rng.uniform(5, 50, 300).round(2)}
                 ).to_csv(root / "interactions.csv", index=False)
    return {
        "name": "tiny_users", "source": "generic", "root": str(root), "positive_events": ["purchase"],
        "tables": {
            "interactions": {"path": "interactions.csv", "date_format": "%Y-%m-%d",
                             "columns": {"user_id": "cust", "item_id": "sku", "timestamp": "day",
                                         "price": "amount"},
                             "constants": {"event": "purchase"}},
            "users": {"path": "users.csv", "columns": {"user_id": "cust", "age": "age", "gender": "sex"},
                      "numeric": ["spend"]},
            "items": {"path": "items.csv", "columns": {"item_id": "sku", "price": "list_price"}},
        },
    }


def test_encoder_reproduces_the_datasets_encoded_values_exactly(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    pre = OmegaConf.load(CONF / "preprocess" / "default.yaml")
    pre.pca = {"enabled": True, "n_components": 2, "tables": ["users"]}
    pre.log_numeric = ["price", "spend"]
    pre.outliers.action = "clip"
    cfg = OmegaConf.create({"data": _tiny_source(raw), "preprocess": pre,
                            "split": OmegaConf.load(CONF / "split" / "temporal.yaml"),
                            "output_dir": str(tmp_path / "out")})
    ds = load_dataset(build_dataset(cfg))
    enc = user_encoder(ds.fitted, ds.features, ds.items["item_id"].tolist(), {"history_len": 2})
    numeric = ds.features["users"]["numeric"]
    assert numeric == ["age", "spend", "pca0", "pca1"]
    raw_users = pd.read_csv(raw / "users.csv")  # before the data stage filled the gaps
    records = [{"age": None if np.isnan(a) else a, "gender": g, "spend": s}
               for a, g, s in raw_users[["age", "sex", "spend"]].itertuples(index=False)]
    _, cat, num, *_ = enc.encode(records)
    users = ds.users.sort_values("user_idx")  # same order as users.csv
    np.testing.assert_array_equal(num.numpy(), users[[f"{c}_z" for c in numeric]].to_numpy(np.float32))
    np.testing.assert_array_equal(cat.numpy()[:, 0], users["gender_idx"].to_numpy())
    bundle = UserFeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())), enc.item_ids)
    np.testing.assert_array_equal(bundle.encode(records)[2].numpy(), num.numpy())


@pytest.mark.parametrize("action", ["clip", "flag"])
def test_numeric_z_without_pandas_equals_the_datasets_z_matrix(action: str) -> None:
    """The request path's numpy encoding gives z_matrix's values bit for bit: gaps, outliers on
    both sides, log scaling, a column without training values, PCA."""
    params = NumericParams(
        fences={"age": Fence(18.0, 90.0), "spend": Fence(0.0, 400.0)}, outlier_action=action,
        fill={"age": 35.0, "spend": 20.0},
        scalers={"age": Scaler(False, 40.0, 12.0, 18.0, 60.0),
                 "spend": Scaler(True, 3.0, 1.5, 0.0, 6.0),
                 "visits": Scaler(False, None, 1.0, 0.0, 1.0),
                 "pca0": Scaler(False, 0.1, 2.0, -3.0, 6.0),
                 "pca1": Scaler(True, 0.0, 0.5, 0.0, 1.0)},
        pca=Pca(["age", "spend"], np.array([0.1, -0.2]), np.array([[0.6, -0.8], [0.3, 0.9]])))
    rng = np.random.default_rng(0)
    raw = {"age": rng.uniform(0, 120, 64), "spend": rng.uniform(-50, 900, 64),
           "visits": rng.uniform(0, 9, 64)}
    for col in raw:
        raw[col][rng.random(64) < 0.2] = np.nan
    expected = params.z_matrix(pd.DataFrame(raw))
    enc = UserFeatureEncoder({}, params)
    records = [{c: (None if np.isnan(v[i]) else float(v[i])) for c, v in raw.items()}
               for i in range(64)]
    got = enc.encode(records)[2].numpy()
    assert got.dtype == expected.dtype and got.shape == (64, 5)
    np.testing.assert_array_equal(got, expected)
    assert enc.encode([{}])[2].shape == (1, 5)
