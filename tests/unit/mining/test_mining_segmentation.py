"""K-Means with k by silhouette, Ward clustering and segment names."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from recsys.mining.segmentation import NO_PURCHASE_SEGMENT, segment_users


def _rfm(groups: list[tuple[int, float, int, float]], seed: int = 0) -> pd.DataFrame:
    """``groups``: (size, recency, frequency, monetary) blobs with small noise; plus 2 prospects."""
    rng = np.random.default_rng(seed)
    rows = []
    for size, rec, freq, mon in groups:
        for _ in range(size):
            rows.append((rec * rng.uniform(0.95, 1.05), freq, mon * rng.uniform(0.95, 1.05)))
    rows += [(np.nan, 0, 0.0), (np.nan, 0, 0.0)]
    rfm = pd.DataFrame(rows, columns=["recency_days", "frequency", "monetary"])
    rfm.insert(0, "user_idx", np.arange(len(rfm)))
    rfm.insert(1, "user_id", [f"u{i}" for i in range(len(rfm))])
    buyers = rfm["frequency"] > 0
    rfm["r_score"] = 0
    rfm["f_score"] = 0
    rfm.loc[buyers, "r_score"] = pd.qcut(-rfm.loc[buyers, "recency_days"], 3, labels=False) + 1
    rfm.loc[buyers, "f_score"] = pd.qcut(rfm.loc[buyers, "frequency"].rank(method="first"), 3,
                                         labels=False) + 1
    return rfm


def test_kmeans_picks_the_planted_number_of_clusters() -> None:
    rfm = _rfm([(20, 2.0, 12, 900.0), (20, 60.0, 1, 20.0), (20, 15.0, 4, 150.0)])
    users = pd.DataFrame({"user_idx": rfm["user_idx"], "age": 30.0})
    seg = segment_users(rfm, users, k_min=2, k_max=6, profile_features=["age"], min_users=5, seed=0)
    assert seg.best_k == 3
    assert max(seg.silhouettes, key=lambda k: seg.silhouettes[k]) == 3
    buyers = seg.table[seg.table["kmeans_segment"] >= 0]
    planted = np.repeat([0, 1, 2], 20)
    assert adjusted_rand_score(planted, buyers["kmeans_segment"]) == 1.0
    assert adjusted_rand_score(planted, buyers["ward_segment"]) == 1.0
    prospects = seg.table[seg.table["kmeans_segment"] < 0]
    assert len(prospects) == 2 and set(prospects["segment"]) == {NO_PURCHASE_SEGMENT}
    # recent frequent buyers are champions, old infrequent ones hibernating
    assert buyers["segment"].iloc[0] == "champions"
    assert buyers["segment"].iloc[25] == "hibernating"


def test_too_few_buyers_form_one_segment() -> None:
    rfm = _rfm([(3, 5.0, 2, 50.0)])
    users = pd.DataFrame({"user_idx": rfm["user_idx"]})
    seg = segment_users(rfm, users, k_min=2, k_max=4, profile_features=[], min_users=10, seed=0)
    buyers = seg.table[rfm["frequency"] > 0]
    assert set(buyers["segment"]) == {"buyers"} and set(buyers["kmeans_segment"]) == {0}
    assert seg.silhouettes == {}
