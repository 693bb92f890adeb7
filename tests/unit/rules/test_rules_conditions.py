"""The condition language: parsing, every operator, nulls, combinators, scopes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.errors import RuleError
from recsys.rules import RuleContext
from recsys.rules.conditions import canonical, parse_condition
from recsys.rules.frame import EvalFrame

NOW = pd.Timestamp("2024-05-01")


@pytest.fixture()
def frame() -> EvalFrame:
    users = pd.DataFrame({"user_idx": [0, 1, 2, 3], "user_id": ["a", "b", "c", "d"],
                          "age": [10.0, 30.0, np.nan, 50.0],
                          "segment": ["gold", "silver", None, "gold"],
                          "vip": [True, False, False, True], "price": [1.0, 2.0, 3.0, 4.0]})
    items = pd.DataFrame({"item_idx": [0, 1, 2], "item_id": ["x", "y", "z"],
                          "price": [5.0, 50.0, np.nan], "category": ["hat", "bag", "hat"],
                          "first_seen": pd.to_datetime(["2024-01-01", "2024-04-20", "2023-06-01"])})
    rows = pd.DataFrame({"user_idx": np.repeat(np.arange(4), 3), "item_idx": np.tile(np.arange(3), 4)})
    rows["score"] = np.linspace(0.0, 1.1, 12)
    ctx = RuleContext(users, items, pd.DataFrame(columns=["user_idx", "item_idx", "timestamp"]),
                      pd.DataFrame(columns=["level", "antecedents", "consequents", "lift"]), NOW)
    return EvalFrame(rows, ctx)


def _joined(frame: EvalFrame) -> pd.DataFrame:
    """The same rows joined the slow way, to compare against."""
    u = frame.ctx.users.add_prefix("u_")
    i = frame.ctx.items.add_prefix("i_")
    out = frame.rows.merge(u, left_on="user_idx", right_on="u_user_idx", how="left")
    return out.merge(i, left_on="item_idx", right_on="i_item_idx", how="left")


def _mask(frame: EvalFrame, raw: dict[str, Any]) -> np.ndarray:
    return frame.mask(parse_condition(raw, "test.when", None))


@pytest.mark.parametrize(("raw", "expected"), [
    ({"column": "age", "op": "<", "value": 18}, lambda j: j["u_age"] < 18),
    ({"column": "age", "op": ">=", "value": 30}, lambda j: j["u_age"] >= 30),
    ({"column": "age", "op": "==", "value": 30}, lambda j: j["u_age"] == 30),
    ({"column": "age", "op": "!=", "value": 30}, lambda j: ~(j["u_age"] == 30)),
    ({"column": "age", "op": "between", "value": [10, 30]}, lambda j: j["u_age"].between(10, 30)),
    ({"column": "age", "op": "is_null"}, lambda j: j["u_age"].isna()),
    ({"column": "age", "op": "not_null"}, lambda j: j["u_age"].notna()),
    ({"column": "segment", "op": "in", "value": ["gold"]}, lambda j: j["u_segment"] == "gold"),
    ({"column": "segment", "op": "not_in", "value": ["gold"]}, lambda j: ~(j["u_segment"] == "gold")),
    ({"column": "vip", "op": "==", "value": True}, lambda j: j["u_vip"]),
    ({"column": "item.price", "op": ">", "value": 10}, lambda j: j["i_price"] > 10),
    ({"column": "category", "op": "==", "value": "hat"}, lambda j: j["i_category"] == "hat"),
    ({"column": "score", "op": "<=", "value": 0.5}, lambda j: j["score"] <= 0.5),
    ({"column": "first_seen", "op": ">", "value": "2024-03-01"},
     lambda j: j["i_first_seen"] > pd.Timestamp("2024-03-01")),
    ({"column": "item.price", "op": ">", "ref": "age"}, lambda j: j["i_price"] > j["u_age"]),
    ({"all": [{"column": "vip", "op": "==", "value": True},
              {"column": "category", "op": "==", "value": "bag"}]},
     lambda j: j["u_vip"] & (j["i_category"] == "bag")),
    ({"any": [{"column": "age", "op": "is_null"}, {"column": "item.price", "op": "is_null"}]},
     lambda j: j["u_age"].isna() | j["i_price"].isna()),
    ({"not": {"column": "segment", "op": "==", "value": "gold"}}, lambda j: j["u_segment"] != "gold"),
])
def test_operator_matches_a_joined_reference(frame: EvalFrame, raw: dict[str, Any], expected: Any) -> None:
    want = np.asarray(expected(_joined(frame)).fillna(False), dtype=bool)
    assert np.array_equal(_mask(frame, raw), want)


def test_nulls_only_match_negations(frame: EvalFrame) -> None:
    # user 2 has no age and no segment: only rows 6..8
    assert not _mask(frame, {"column": "age", "op": "<", "value": 100})[6:9].any()
    assert _mask(frame, {"column": "age", "op": "!=", "value": 1})[6:9].all()
    assert _mask(frame, {"column": "segment", "op": "not_in", "value": ["gold", "silver"]})[6:9].all()


def test_user_level_evaluation_and_scope(frame: EvalFrame) -> None:
    cond = parse_condition({"column": "vip", "op": "==", "value": True}, "p.when", None)
    assert frame.scope(cond) == "user"
    assert frame.mask(cond, "user").tolist() == [True, False, False, True]
    mixed = parse_condition({"all": [{"column": "vip", "op": "==", "value": True},
                                     {"column": "category", "op": "==", "value": "hat"}]}, "w", None)
    assert frame.scope(mixed) == "row"


def test_prefixes_resolve_ambiguous_columns(frame: EvalFrame) -> None:
    assert "ambiguous" in str(frame.resolve("price"))
    assert frame.resolve("user.price") == ("user", "price")
    assert frame.resolve("item.price") == ("item", "price")
    assert "unknown column" in str(frame.resolve("colour"))


@pytest.mark.parametrize(("raw", "message"), [
    ({"column": "age", "op": "~=", "value": 1}, "unknown operator '~='"),
    ({"column": "age", "op": "<", "value": 1, "weight": 2}, "unknown field 'weight'"),
    ({"column": "age", "op": "in", "value": 3}, "needs a list"),
    ({"column": "age", "op": "between", "value": [5, 1]}, "reversed"),
    ({"column": "age", "op": "is_null", "value": 1}, "takes no value"),
    ({"column": "age", "op": "<"}, "needs a value"),
    ({"column": 3, "op": "<", "value": 1}, "wrong type"),
    ({"all": []}, "at least one"),
    ({"all": [{"column": "age", "op": "<", "value": 1}], "column": "x"}, "unknown field"),
    ("age < 3", "expected a mapping"),
])
def test_malformed_conditions(raw: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message) as err:
        parse_condition(raw, "filters[0] 'f'.when", "rules.yaml")
    assert "filters[0] 'f'.when" in str(err.value) and "rules.yaml" in str(err.value)


def test_nullable_string_and_boolean_columns() -> None:
    """Columns with pd.NA (pandas nullable dtypes) follow the same null rules."""
    users = pd.DataFrame({"user_idx": [0, 1, 2], "user_id": ["a", "b", "c"],
                          "channel": pd.array(["sms", pd.NA, "email"], dtype="string"),
                          "flag": pd.array([True, pd.NA, False], dtype="boolean")})
    items = pd.DataFrame({"item_idx": [0], "item_id": ["x"]})
    rows = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [0, 0, 0]})
    ctx = RuleContext(users, items, pd.DataFrame(columns=["user_idx", "item_idx", "timestamp"]),
                      pd.DataFrame(columns=["level", "antecedents", "consequents", "lift"]), NOW)
    frame = EvalFrame(rows, ctx)
    assert _mask(frame, {"column": "channel", "op": "==", "value": "sms"}).tolist() == [True, False, False]
    assert _mask(frame, {"column": "channel", "op": "!=", "value": "sms"}).tolist() == [False, True, True]
    assert _mask(frame, {"column": "flag", "op": "==", "value": True}).tolist() == [True, False, False]
    assert _mask(frame, {"column": "flag", "op": "is_null"}).tolist() == [False, True, False]


def test_canonical_ignores_member_order() -> None:
    a = parse_condition({"all": [{"column": "a", "op": "<", "value": 1},
                                 {"column": "b", "op": "in", "value": [1, 2]}]}, "x", None)
    b = parse_condition({"all": [{"column": "b", "op": "in", "value": [1, 2]},
                                 {"column": "a", "op": "<", "value": 1}]}, "y", None)
    c = parse_condition({"any": [{"column": "b", "op": "in", "value": [1, 2]},
                                 {"column": "a", "op": "<", "value": 1}]}, "y", None)
    assert canonical(a) == canonical(b) != canonical(c)
