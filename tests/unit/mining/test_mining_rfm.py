"""RFM values and quantile scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.mining.rfm import compute_rfm, quantile_score

NOW = pd.Timestamp("2024-03-31")


def _purchases(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_idx", "timestamp", "amount"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["quantity"] = 1
    df["item_idx"] = 0
    return df


def test_rfm_values_per_user() -> None:
    users = pd.DataFrame({"user_idx": [0, 1, 2], "user_id": ["a", "b", "c"]})
    p = _purchases([
        (0, "2024-03-30 10:00", 10.0), (0, "2024-03-30 18:00", 5.0),  # same day: one order
        (0, "2024-03-01 00:00", 20.0),
        (1, "2024-01-31 00:00", 100.0),
    ])
    rfm = compute_rfm(p, users, NOW, bins=5).set_index("user_idx")
    assert rfm.loc[0, "frequency"] == 2
    assert rfm.loc[0, "monetary"] == 35.0
    assert rfm.loc[0, "recency_days"] == (NOW - pd.Timestamp("2024-03-30 18:00")) / pd.Timedelta(days=1)
    assert rfm.loc[1, "recency_days"] == 60.0
    # user 2 never bought: zero scores, NaN recency
    assert rfm.loc[2, "frequency"] == 0 and np.isnan(rfm.loc[2, "recency_days"])
    assert rfm.loc[2, ["r_score", "f_score", "m_score", "rfm_score"]].tolist() == [0, 0, 0, 0]
    # more recent and more frequent user 0 scores higher on R and F; user 1 higher on M
    assert rfm.loc[0, "r_score"] > rfm.loc[1, "r_score"]
    assert rfm.loc[0, "f_score"] > rfm.loc[1, "f_score"]
    assert rfm.loc[1, "m_score"] > rfm.loc[0, "m_score"]
    assert rfm.loc[0, "rfm_code"] == f"{rfm.loc[0, 'r_score']}{rfm.loc[0, 'f_score']}{rfm.loc[0, 'm_score']}"


def test_quantile_score_ranks_into_bins() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    assert quantile_score(values, 5).tolist() == [1, 2, 3, 4, 5, 0]
    assert quantile_score(values, 5, higher_is_better=False).tolist() == [5, 4, 3, 2, 1, 0]
    # ties share a score
    tied = quantile_score(pd.Series([7.0, 7.0, 7.0, 1.0]), 4)
    assert tied.iloc[0] == tied.iloc[1] == tied.iloc[2] > tied.iloc[3]
