"""Consumer profiles: four dimensions, table and per-user JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from recsys.mining.config import ProfileConfig
from recsys.mining.profile_json import to_jsonl
from recsys.mining.profiles import build_profiles
from recsys.mining.rfm import compute_rfm

NOW = pd.Timestamp("2024-02-01")
CFG = ProfileConfig(demographics=["age", "gender", "missing_col"], top_n=2, spend_tiers=[0.33, 0.66],
                    price_sensitive_below=0.85, quality_focused_above=1.2)


def _world(with_hours: bool = True) -> tuple[pd.DataFrame, ...]:
    users = pd.DataFrame({"user_idx": [0, 1, 2, 3], "user_id": ["a", "b", "c", "d"],
                          "age": [30.0, 40.0, np.nan, 22.0], "gender": ["F", "M", None, "F"],
                          "preferred_channel": ["email", "sms", None, None]})
    items = pd.DataFrame({"item_idx": [0, 1, 2, 3], "item_id": ["i0", "i1", "i2", "i3"],
                          "category": ["shoes", "shoes", "bags", "bags"],
                          "colour": ["red", "blue", "red", "red"],
                          "price": [10.0, 30.0, 20.0, 20.0]})
    rows = [  # user, item, day, hour, event, price
        (0, 0, 1, 19, "purchase", 10.0), (0, 1, 2, 19, "purchase", 30.0),
        (0, 0, 3, 19, "purchase", 10.0), (0, 2, 5, 8, "purchase", 20.0),
        (1, 1, 1, 12, "purchase", 30.0), (1, 1, 9, 12, "purchase", 30.0),
        (2, 3, 4, 21, "view", 20.0),
        (3, 0, 6, 9, "purchase", 8.0), (3, 0, 7, 9, "purchase", 8.0),
    ]
    inter = pd.DataFrame(rows, columns=["user_idx", "item_idx", "day", "hour", "event", "price"])
    inter["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(inter["day"], unit="D")
    if with_hours:
        inter["timestamp"] += pd.to_timedelta(inter["hour"], unit="h")
    inter["quantity"] = 1
    inter["channel"] = ["app", "app", "web", "app", "store", "store", "web", "app", "app"]
    purchases = inter[inter["event"] == "purchase"].copy()
    purchases["amount"] = purchases["price"]
    return users, items, inter, purchases


def test_profile_dimensions() -> None:
    users, items, inter, purchases = _world()
    rfm = compute_rfm(purchases, users, NOW, 5)
    prof = build_profiles(inter, purchases, users, items, rfm,
                          {"category": "category", "colour": "colour"}, CFG, NOW).set_index("user_idx")
    # demographics: configured columns that exist
    assert "missing_col" not in prof.columns and prof.loc[0, "age"] == 30.0
    # preferences: most bought first; a non-buyer's come from views
    assert prof.loc[0, "pref_category"] == ["shoes", "bags"]
    assert prof.loc[0, "top_colour"] == "red"
    assert prof.loc[2, "top_category"] == "bags"
    # purchasing power
    assert prof.loc[0, "total_spend"] == 70.0 and prof.loc[0, "n_orders"] == 4
    assert prof.loc[0, "min_price"] == 10.0 and prof.loc[0, "max_price"] == 30.0
    assert prof.loc[1, "avg_order_value"] == 30.0
    assert prof.loc[2, "spend_tier"] == "none"
    assert prof.loc[3, "spend_tier"] == "low" and prof.loc[0, "spend_tier"] == "high"
    # price index: paid / category median (shoes median 20): user 3 paid 8 -> 0.4
    assert np.isclose(prof.loc[3, "price_index"], 0.4) and prof.loc[3, "price_sensitive"]
    assert np.isclose(prof.loc[1, "price_index"], 1.5) and prof.loc[1, "quality_focused"]
    assert not prof.loc[2, "price_sensitive"] and not prof.loc[2, "quality_focused"]
    # habits
    assert prof.loc[0, "active_hours"] == [19, 8] and prof.loc[0, "top_hour"] == 19
    assert prof.loc[1, "channel_preference"] == "store"
    assert prof.loc[1, "preferred_channel"] == "sms"


def test_dates_only_leave_hours_unknown() -> None:
    users, items, inter, purchases = _world(with_hours=False)
    rfm = compute_rfm(purchases, users, NOW, 5)
    prof = build_profiles(inter, purchases, users, items, rfm, {"category": "category"}, CFG, NOW)
    assert all(h == [] for h in prof["active_hours"]) and set(prof["top_hour"]) == {-1}


def test_profile_json_groups_four_dimensions() -> None:
    users, items, inter, purchases = _world()
    rfm = compute_rfm(purchases, users, NOW, 5)
    prof = build_profiles(inter, purchases, users, items, rfm, {"category": "category"}, CFG, NOW)
    docs = [json.loads(line) for line in to_jsonl(prof, ["age", "gender"]).splitlines()]
    assert len(docs) == 4
    first = docs[0]
    assert set(first) == {"user_idx", "user_id", "demographics", "preferences", "purchasing_power",
                          "habits"}
    assert first["demographics"] == {"age": 30.0, "gender": "F"}
    assert first["preferences"]["pref_category"] == ["shoes", "bags"]
    assert first["purchasing_power"]["total_spend"] == 70.0
    assert first["habits"]["top_hour"] == 19
    assert docs[2]["demographics"]["age"] is None  # NaN becomes null
