"""The history as of a cut-off: nothing at or after it is read; a cut-off outside the data is
refused."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.errors import DataError
from recsys.ranking.history import history_as_of, hold_out_last_day

FRAME = pd.DataFrame({"user_idx": [0, 0, 1, 1], "item_idx": [0, 1, 1, 2],
                      "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-03",
                                                   "2024-01-05"])})


def test_rows_at_or_after_the_cutoff_are_dropped() -> None:
    hist = history_as_of(FRAME, 2, 3, "2024-01-05")
    assert len(hist.frame) == 2 and hist.frame["timestamp"].max() < pd.Timestamp("2024-01-05")
    assert hist.age_days.tolist() == [4.0, 2.0]


@pytest.mark.parametrize("cutoff", ["2023-12-01", "2024-01-01", "2024-02-01"])
def test_cutoff_outside_the_data_is_refused(cutoff: str) -> None:
    with pytest.raises(DataError, match="outside the data") as err:
        history_as_of(FRAME, 2, 3, cutoff, source="train.parquet")
    assert "train.parquet" in str(err.value) and "timestamp" in str(err.value)


def test_cutoff_on_untimed_data_is_refused() -> None:
    untimed = FRAME.assign(timestamp=pd.NaT)
    assert history_as_of(untimed, 2, 3).cutoff is None
    with pytest.raises(DataError, match="no timestamps"):
        history_as_of(untimed, 2, 3, "2024-01-02")


def test_hold_out_last_day_labels_each_users_last_day() -> None:
    rest, held = hold_out_last_day(FRAME)
    assert held["item_idx"].tolist() == [1, 2] and rest["item_idx"].tolist() == [0, 1]
