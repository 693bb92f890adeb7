"""Customer segmentation: K-Means (k by silhouette) and Ward clustering on RFM + profile features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

NO_PURCHASE_SEGMENT = "prospects"


@dataclass(frozen=True)
class Segmentation:
    """Per-user segments plus the silhouette of every k tried."""

    table: pd.DataFrame
    best_k: int
    silhouettes: dict[int, float] = field(default_factory=dict)


def segment_features(
    rfm: pd.DataFrame, users: pd.DataFrame, profile_features: Sequence[str]
) -> pd.DataFrame:
    """Log-RFM plus the numeric profile columns present in ``users`` (median-imputed)."""
    feats = pd.DataFrame(
        {
            "log_recency": np.log1p(rfm["recency_days"].to_numpy(dtype=float)),
            "log_frequency": np.log1p(rfm["frequency"].to_numpy(dtype=float)),
            "log_monetary": np.log1p(rfm["monetary"].to_numpy(dtype=float)),
        },
        index=rfm["user_idx"].to_numpy(),
    )
    by_idx = users.set_index("user_idx")
    for col in profile_features:
        if col in by_idx.columns and pd.api.types.is_numeric_dtype(by_idx[col]):
            values = by_idx[col].reindex(feats.index).astype(float)
            feats[col] = values.fillna(values.median() if values.notna().any() else 0.0)
    return feats


def name_clusters(labels: np.ndarray, rfm: pd.DataFrame) -> dict[int, str]:
    """Name each cluster by its mean recency / frequency scores against the buyers' mean."""
    scores = rfm[["r_score", "f_score"]].astype(float).assign(label=labels)
    means = scores.groupby("label")[["r_score", "f_score"]].mean()
    r_all, f_all = scores["r_score"].mean(), scores["f_score"].mean()
    names = {}
    for label, row in means.iterrows():
        recent, frequent = row["r_score"] >= r_all, row["f_score"] >= f_all
        names[int(str(label))] = (
            ("champions" if frequent else "promising") if recent
            else ("at_risk" if frequent else "hibernating")
        )
    return names


def _single_segment(
    table: pd.DataFrame, rfm: pd.DataFrame, silhouettes: dict[int, float]
) -> Segmentation:
    """Too few (or identical) buyers to cluster: all buyers form segment 0, ``buyers``."""
    is_buyer = rfm["frequency"].to_numpy() > 0
    table.loc[is_buyer, ["kmeans_segment", "ward_segment"]] = 0
    table.loc[is_buyer, "segment"] = "buyers"
    return Segmentation(table, int(is_buyer.any()), silhouettes)


def segment_users(
    rfm: pd.DataFrame,
    users: pd.DataFrame,
    *,
    k_min: int,
    k_max: int,
    profile_features: Sequence[str],
    min_users: int,
    seed: int,
) -> Segmentation:
    """Cluster the buyers; users without purchases form the ``prospects`` segment (id -1)."""
    buyers = rfm[rfm["frequency"] > 0].reset_index(drop=True)
    table = rfm[["user_idx", "user_id"]].copy()
    table["kmeans_segment"] = -1
    table["ward_segment"] = -1
    table["segment"] = NO_PURCHASE_SEGMENT
    silhouettes: dict[int, float] = {}
    if len(buyers) < max(min_users, k_min + 1):
        return _single_segment(table, rfm, silhouettes)
    x = StandardScaler().fit_transform(segment_features(buyers, users, profile_features))
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(k_min, min(k_max, len(buyers) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        if len(set(labels)) < 2:
            continue
        silhouettes[k] = float(silhouette_score(x, labels, random_state=seed))
        if best is None or silhouettes[k] > best[0]:
            best = (silhouettes[k], k, labels)
    if best is None:  # all buyers alike
        return _single_segment(table, rfm, silhouettes)
    _, k, labels = best
    ward = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
    names = name_clusters(labels, buyers)
    pos = table.index[rfm["frequency"].to_numpy() > 0]
    table.loc[pos, "kmeans_segment"] = labels
    table.loc[pos, "ward_segment"] = ward
    table.loc[pos, "segment"] = [names[int(lab)] for lab in labels]
    table["kmeans_segment"] = table["kmeans_segment"].astype("int64")
    table["ward_segment"] = table["ward_segment"].astype("int64")
    return Segmentation(table, k, silhouettes)
