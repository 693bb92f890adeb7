"""Recency features counted back from each user's last purchase (decayed user-item and
user-sibling purchases, purchase days and the mean gap between them) and same-basket
co-purchases, checked against values worked out by hand on a five-row history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.errors import ConfigError
from recsys.ranking.candidates import Candidates, merge
from recsys.ranking.config import ranking_config
from recsys.ranking.features import Catalog, build_features
from recsys.ranking.history import history_as_of
from recsys.ranking.recency import pair_values

CUTOFF = pd.Timestamp("2024-02-01")
# (user, item, whole days before the cut-off); groups: items 1 and 4 -> 0, items 2 and 3 -> 1
ROWS = [(0, 1, 10), (0, 1, 2), (0, 2, 2), (0, 3, 5), (1, 2, 4), (1, 3, 4), (1, 4, 1)]
H = 7.0


def features() -> dict[str, np.ndarray]:
    frame = pd.DataFrame({"user_idx": [r[0] for r in ROWS], "item_idx": [r[1] for r in ROWS],
                          "timestamp": [CUTOFF - pd.Timedelta(days=r[2]) for r in ROWS]})
    hist = history_as_of(frame, 2, 5, CUTOFF)
    cat = Catalog(groups=np.array([-1, 0, 1, 1, 0]), price=None,
                  user_values=np.empty((2, 0)), user_names=(), item_values=np.empty((5, 0)),
                  item_names=())
    rows, items = np.array([0, 0, 0, 0, 1]), np.array([1, 2, 3, 4, 1])
    cands = merge(np.array([0, 1]), 5, {"all": Candidates(rows, items, np.zeros(5),
                                                          np.arange(5) % 4)})
    assert cands.rows.tolist() == rows.tolist() and cands.items.tolist() == items.tolist()
    feats = build_features(cands, hist, cat, (7.0,), half_lives=(H,), basket_half_life=H)
    return {n: feats.values[:, j].astype(np.float64) for j, n in enumerate(feats.names)}


def test_decayed_purchases_count_back_from_the_users_last_purchase() -> None:
    col = features()
    w = 0.5 ** (8 / H)  # user 0's last purchase is 2 days before the cut-off
    np.testing.assert_allclose(col["ui_decayed_7d"], [w + 1, 1, 0.5 ** (3 / H), 0, 0], rtol=1e-6)
    # siblings: group 0 = items 1, 4; group 1 = items 2, 3 (user 1's last purchase: 1 day)
    np.testing.assert_allclose(col["ug_decayed_7d"],
                               [w + 1, 1 + 0.5 ** (3 / H), 1 + 0.5 ** (3 / H), w + 1, 1.0],
                               rtol=1e-6)


def test_purchase_days_and_the_mean_gap_between_them() -> None:
    col = features()
    np.testing.assert_array_equal(col["user_days"], [3, 3, 3, 3, 2])
    np.testing.assert_allclose(col["user_gap_days"], [4, 4, 4, 4, 3])  # (10-2)/2, (4-1)/1


def test_basket_score_sums_same_day_co_purchases_weighted_by_recency() -> None:
    col = features()
    # baskets: u0 {1} {1,2} {3}, u1 {2,3} {4}: pairs (1,2) and (2,3) once each
    w1, w2, w3 = 0.5 ** (8 / H) + 1, 1.0, 0.5 ** (3 / H)  # user 0's weights of items 1, 2, 3
    # user 1 bought item 2 three days before their last purchase; item 2 was co-bought with 1
    expected = [w2, w1 + w3, w2, 0.0, 0.5 ** (3 / H)]
    np.testing.assert_allclose(col["basket_score"], expected, rtol=1e-6)


@pytest.mark.parametrize("setting", [{"decay_half_lives": [0]}, {"basket_half_life": -1},
                                     {"decay_half_lives": ["x"]}])
def test_non_positive_half_lives_are_refused(setting: dict[str, object]) -> None:
    cand = {"budget": 5, "batch_users": 10, "recall_at": [5], "sources": {},
            "features": {"popularity_windows": [7], **setting}}
    ranker = {"params": {}, "num_boost_round": 1, "seed": 0, "threads": 1}
    with pytest.raises(ConfigError, match=r"candidates\.features"):
        ranking_config(cand, ranker)


def test_pair_values_reads_stored_entries_and_sums_duplicates() -> None:
    # row 0 stores column 3 twice (1 and 4) and column 1, unsorted; row 2 stores column 0
    m = sp.csr_matrix((np.array([1.0, 2.0, 4.0, 3.0]), np.array([3, 1, 3, 0]),
                       np.array([0, 3, 3, 4])), shape=(3, 4))
    got = pair_values(m, np.array([2, 0, 0, 1, 0]), np.array([0, 3, 1, 1, 3]))
    np.testing.assert_array_equal(got, [3.0, 5.0, 2.0, 0.0, 5.0])
