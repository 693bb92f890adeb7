"""Cross-sell for a single user's history (the request path) equals the join over all users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.rules.crosssell import _fired_by_join, _fired_consequents, _fired_for_one_user


def _pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["user_idx"].tolist(), frame["code"].tolist(), strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_one_user_set_lookups_equal_the_join(seed: int) -> None:
    """Random rules (multi-item and repeated antecedents, labels outside the catalogue, empty
    consequents) over random single-user histories, the empty history included."""
    rng = np.random.default_rng(seed)
    names = [f"i{i}" for i in range(30)]
    pool = [*names, "gone", "x"]  # two labels the catalogue does not hold
    labels = pd.Index(names, dtype=object)
    rules = pd.DataFrame({
        "antecedents": [list(rng.choice(pool, size=rng.integers(0, 4))) for _ in range(80)],
        "consequents": [list(rng.choice(pool, size=rng.integers(0, 3))) for _ in range(80)]})
    fired_any = 0
    for n_owned in (0, 1, 5, 20):
        owned = pd.DataFrame({"user_idx": np.full(n_owned, 7, dtype=np.int64),
                              "code": rng.choice(30, size=n_owned, replace=False)})
        fast, joined = _fired_for_one_user(rules, owned, labels), _fired_by_join(rules, owned, labels)
        assert _pairs(fast) == _pairs(joined)
        assert _pairs(_fired_consequents(rules, owned, labels)) == _pairs(joined)
        fired_any += len(joined)
    assert fired_any > 0  # the comparison saw rules fire


def test_several_users_take_the_join() -> None:
    labels = pd.Index(["a", "b", "c"], dtype=object)
    rules = pd.DataFrame({"antecedents": [["a"], ["a", "b"]], "consequents": [["c"], ["b"]]})
    owned = pd.DataFrame({"user_idx": [0, 1, 1], "code": [0, 0, 1]})
    assert _pairs(_fired_consequents(rules, owned, labels)) == {(0, 2), (1, 2), (1, 1)}
