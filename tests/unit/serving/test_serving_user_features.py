"""UserFeatureEncoder: lookups built once, kept out of the serialised form, pickle-safe."""

from __future__ import annotations

import pickle

import pytest

from recsys.errors import DataError
from recsys.serving.user_features import NumericRule, UserFeatureEncoder


def _encoder() -> UserFeatureEncoder:
    return UserFeatureEncoder(
        {"gender": ["?", "f", "m"]},
        {"age": NumericRule(["age"], [0.1], -3.0, log1p=False, derived=False, fill=None)},
        history_len=3, item_ids=["a", "b", "c"])


def test_lookups_are_built_once_and_survive_a_round_trip() -> None:
    enc = _encoder()
    assert enc.item_index is enc.item_index and enc.item_index == {"a": 0, "b": 1, "c": 2}
    assert enc.category_index is enc.category_index
    assert enc.category_index == {"gender": {"?": 0, "f": 1, "m": 2}}
    again = UserFeatureEncoder.from_dict(enc.to_dict(), enc.item_ids)
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
