"""The LightGBM ranker: learns a planted signal, refuses labels without a positive, and a saved
ranker is refused when the caller builds another feature set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import DataError, ModelError
from recsys.ranking.model import RankerSpec, fit_ranker, load_ranker

SPEC = RankerSpec(params={"objective": "lambdarank", "learning_rate": 0.1, "num_leaves": 7,
                          "min_data_in_leaf": 5}, num_boost_round=30, max_negatives=8)
NAMES = ("signal", "noise")


def planted(seed: int, n_users: int = 60, per_user: int = 20):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_users), per_user)
    signal = rng.normal(size=len(rows))
    labels = (signal + 0.3 * rng.normal(size=len(rows)) > 1.2).astype(float)
    return np.column_stack([signal, rng.normal(size=len(rows))]), labels, rows


def test_ranker_learns_the_planted_signal_and_reports_its_importance() -> None:
    x, y, rows = planted(0)
    ranker = fit_ranker(x, y, rows, NAMES, SPEC)
    xt, yt, _ = planted(1)
    scores = ranker.predict(xt, NAMES)
    assert scores[yt > 0].mean() > scores[yt == 0].mean() + 0.5
    assert next(iter(ranker.importance())) == "signal"
    assert ranker.contributions(xt[:3], NAMES).shape == (3, 3)


def test_labels_without_a_positive_are_refused() -> None:
    x, _, rows = planted(0)
    with pytest.raises(DataError, match="no positive label") as err:
        fit_ranker(x, np.zeros(len(rows)), rows, NAMES, SPEC, source="val.parquet")
    assert "val.parquet" in str(err.value)


def test_saved_ranker_round_trips_and_refuses_another_feature_set(tmp_path: Path) -> None:
    x, y, rows = planted(0)
    ranker = fit_ranker(x, y, rows, NAMES, SPEC)
    ranker.save(tmp_path / "r")
    again = load_ranker(tmp_path / "r", expected=NAMES)
    np.testing.assert_array_equal(again.predict(x, NAMES), ranker.predict(x, NAMES))
    with pytest.raises(ModelError, match="other features"):
        load_ranker(tmp_path / "r", expected=("signal", "noise", "price"))
    with pytest.raises(ModelError, match="other features"):
        load_ranker(tmp_path / "r", expected=("noise", "signal"))  # same names, other order
    with pytest.raises(ModelError, match="other features"):
        ranker.predict(x, ("signal", "other"))
    with pytest.raises(ModelError, match="unreadable ranker"):
        load_ranker(tmp_path / "missing")
