"""A tiny synthetic world: file schemas and the behaviour its latent model promises."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from synthfixtures import tiny_config

from recsys.data.schema import EVENTS
from recsys.data.synthetic import generate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = generate(tiny_config(), tmp_path_factory.mktemp("synthetic") / "world")
    tables = {
        name: pd.read_parquet(root / f"{name}.parquet")
        for name in ("interactions", "users", "items", "user_images")
    }
    meta = json.loads((root / "world.json").read_text())
    return {"root": root, "meta": meta, **tables}


def _assert_dtypes(df: pd.DataFrame, expected: dict[str, str]) -> None:
    for col, kind in expected.items():
        assert col in df.columns, col
        s = df[col]
        ok = {
            "str": pd.api.types.is_string_dtype(s) or s.dtype == object,
            "int64": s.dtype == np.int64,
            "float64": s.dtype == np.float64,
            "bool": s.dtype == bool,
            "ns": s.dtype == "datetime64[ns]",
        }[kind]
        assert ok, f"{col}: {s.dtype} is not {kind}"


def test_interactions_schema(world: dict[str, Any]) -> None:
    inter = world["interactions"]
    assert list(inter.columns) == [
        "user_id", "item_id", "timestamp", "event", "quantity", "price", "channel"
    ]
    _assert_dtypes(inter, {"user_id": "str", "item_id": "str", "timestamp": "ns", "event": "str",
                           "quantity": "int64", "price": "float64", "channel": "str"})
    assert set(inter["event"]) == set(EVENTS)
    assert set(inter["channel"]) == {"app", "web", "store"}
    assert inter["user_id"].str.fullmatch(r"u\d{6}").all()
    assert inter["item_id"].str.fullmatch(r"i\d{6}").all()
    assert set(inter["user_id"]) <= set(world["users"]["user_id"])
    assert set(inter["item_id"]) <= set(world["items"]["item_id"])
    assert (inter["quantity"] >= 1).all() and (inter["quantity"] == 1).mean() > 0.85
    assert (inter["price"] > 0).all()
    assert inter["timestamp"].is_monotonic_increasing
    periods = world["meta"]["periods"]
    assert inter["timestamp"].min() >= pd.Timestamp(periods["start"])
    assert inter["timestamp"].max() < pd.Timestamp(periods["end"]) + pd.Timedelta(days=1)
    # In-store sessions record purchases only.
    assert set(inter.loc[inter["channel"] == "store", "event"]) == {"purchase"}


def test_users_schema_consents_and_pii(world: dict[str, Any]) -> None:
    users = world["users"]
    _assert_dtypes(users, {"user_id": "str", "age": "float64", "gender": "str", "region": "str",
                           "occupation": "str", "income_band": "str", "marketing_consent": "bool",
                           "social_image_consent": "bool", "preferred_channel": "str",
                           "active_hour": "int64", "name": "str", "email": "str",
                           "postal_code": "str"})
    assert len(users) == 200 and users["user_id"].is_unique
    assert set(users["preferred_channel"]) <= {"app_push", "email", "sms", "social_ads"}
    assert users["active_hour"].between(0, 23).all()
    assert 0.65 < users["marketing_consent"].mean() < 0.92
    assert 0.45 < users["social_image_consent"].mean() < 0.75
    assert users["email"].str.contains("@").all()
    assert users["age"].dropna().between(16, 80).all()


def test_items_schema(world: dict[str, Any]) -> None:
    items = world["items"]
    _assert_dtypes(items, {"item_id": "str", "category": "str", "brand": "str", "colour": "str",
                           "style": "str", "tags": "str", "price": "float64", "stock": "int64",
                           "margin": "float64", "age_restricted": "bool", "release_date": "ns",
                           "image_path": "str"})
    assert len(items) == 100 and items["item_id"].is_unique
    assert (items["stock"] >= 0).all() and items["margin"].between(0, 1).all()
    assert (items["price"] > 0).all()
    season = items["tags"].str.split("|").str[0]
    assert set(season) <= {"winter", "spring", "summer", "autumn"}
    assert (items["image_path"] == "images/items/" + items["item_id"] + ".png").all()
    for path in items["image_path"]:
        assert (world["root"] / path).is_file()


def test_user_images_for_about_70_percent_regardless_of_consent(world: dict[str, Any]) -> None:
    imgs, users = world["user_images"], world["users"]
    _assert_dtypes(imgs, {"user_id": "str", "image_path": "str", "posted_at": "ns"})
    per_user = imgs.groupby("user_id").size()
    assert per_user.between(1, 5).all()
    assert 0.55 < len(per_user) / len(users) < 0.85
    posting = users.set_index("user_id").loc[per_user.index, "social_image_consent"]
    assert 0 < posting.mean() < 1  # consent does not decide who posts
    assert imgs["image_path"].str.fullmatch(r"images/users/u\d{6}_\d\.png").all()
    assert all((world["root"] / p).is_file() for p in imgs["image_path"])


def test_world_json_records_config_counts_and_truth(world: dict[str, Any]) -> None:
    meta = world["meta"]
    assert meta["row_counts"] == {
        name: len(world[name]) for name in ("interactions", "users", "items", "user_images")
    }
    assert meta["config"]["n_users"] == 200 and len(meta["config_hash"]) == 16
    truth = meta["truth"]["users"]
    assert truth["user_id"] == world["users"]["user_id"].tolist()
    assert all(len(v) == len(world["users"]) for v in truth.values())
    assert meta["truth"]["items"]["item_id"] == world["items"]["item_id"].tolist()
    base = meta["truth"]["colour_base_rate"]  # matches the published items table
    shares = world["items"]["colour"].value_counts(normalize=True)
    assert set(base) == set(meta["config"]["items"]["colours"])
    assert all(abs(rate - shares.get(colour, 0.0)) <= 1e-4 for colour, rate in base.items())


def test_no_interaction_before_release_and_no_restricted_items_for_minors(
    world: dict[str, Any],
) -> None:
    inter = world["interactions"].merge(world["items"], on="item_id", suffixes=("", "_item"))
    assert (inter["timestamp"] >= inter["release_date"]).all()
    minors = world["users"].loc[world["users"]["age"] < 18, "user_id"]
    restricted = inter[inter["age_restricted"]]
    assert not restricted["user_id"].isin(minors).any()


def test_late_items_exist_and_appear_only_in_the_final_period(world: dict[str, Any]) -> None:
    items, inter = world["items"], world["interactions"]
    final_start = pd.Timestamp(world["meta"]["periods"]["final_start"])
    late = items.loc[items["release_date"] >= final_start, "item_id"]
    assert 3 <= len(late) <= 20  # about 10% of 100
    assert items.loc[items["item_id"].isin(late), "tags"].str.contains("new").all()
    late_events = inter[inter["item_id"].isin(late)]
    assert len(late_events) > 0
    assert (late_events["timestamp"] >= final_start).all()
    # Most items were released before the final period.
    assert (items["release_date"] < final_start).mean() > 0.8


def test_users_buy_their_favourite_colour_far_above_its_base_rate(world: dict[str, Any]) -> None:
    truth = pd.DataFrame(world["meta"]["truth"]["users"])
    buys = world["interactions"].query("event == 'purchase'")
    buys = buys.merge(world["items"][["item_id", "colour", "style"]], on="item_id").merge(
        truth, on="user_id"
    )
    assert len(buys) > 300
    base = world["items"]["colour"].value_counts(normalize=True)
    share = (buys["colour"] == buys["favourite_colour"]).mean()
    expected = base.reindex(buys["favourite_colour"]).fillna(0).mean()
    assert share > 2.5 * expected, (share, expected)
    style_base = world["items"]["style"].value_counts(normalize=True)
    style_share = (buys["style"] == buys["favourite_style"]).mean()
    assert style_share > 1.8 * style_base.reindex(buys["favourite_style"]).fillna(0).mean()


def test_funnel_order(world: dict[str, Any]) -> None:
    inter = world["interactions"]
    counts = inter["event"].value_counts()
    assert counts["view"] > counts["click"] > counts["cart"] > counts["favorite"]
    # Within a session, an item's view comes before its click, cart and purchase.
    online = inter[inter["channel"] != "store"]
    first = online.groupby(["user_id", "item_id", "event"])["timestamp"].min().unstack()
    both = first.dropna(subset=["view", "cart"])
    assert (both["view"] <= both["cart"]).mean() > 0.95


def test_repeat_purchases_reorder_items_bought_before(world: dict[str, Any]) -> None:
    inter = world["interactions"].reset_index(drop=True)
    buys = inter[inter["event"] == "purchase"]
    carts = inter.loc[inter["event"] == "cart", ["user_id", "item_id", "timestamp"]]
    online = buys[buys["channel"] != "store"].reset_index()
    pairs = online.merge(carts, on=["user_id", "item_id"], how="left", suffixes=("", "_cart"))
    recent = (pairs["timestamp_cart"] <= pairs["timestamp"]) & (
        pairs["timestamp_cart"] > pairs["timestamp"] - pd.Timedelta(hours=1)
    )
    reorder_rows = online.loc[~recent.groupby(pairs["index"]).any().to_numpy()]
    # Re-orders skip the funnel: a visible share of online purchases has no cart just before.
    assert len(reorder_rows) > 0.04 * len(online)
    first_buy = buys.groupby(["user_id", "item_id"])["timestamp"].min()
    earlier = first_buy.reindex(pd.MultiIndex.from_frame(reorder_rows[["user_id", "item_id"]]))
    assert (earlier.to_numpy() < reorder_rows["timestamp"].to_numpy()).all()
