"""Transformation, fitted on training entities: categorical and multi-hot vocabularies with an
OOV bucket, standardisation and min-max parameters, optional PCA on the numeric features.
Applying them is :mod:`recsys.data.fitted`'s job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from recsys.data.fitted import NumericParams, Pca, Scaler, TableParams, split_multi
from recsys.data.schema import UNK


@dataclass
class FeatureSpec:
    """Encoded feature names of one table (column names without their suffix)."""

    categorical: list[str] = field(default_factory=list)
    multi_hot: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"categorical": self.categorical, "multi_hot": self.multi_hot, "numeric": self.numeric}


def build_vocab(values: pd.Series, min_count: int) -> list[str]:
    """Values seen at least ``min_count`` times, most frequent first; index 0 is ``<unk>``."""
    counts = values.dropna().astype(str).value_counts(sort=False)
    kept = counts[counts >= min_count]
    ordered = sorted(kept.index, key=lambda v: (-int(kept[v]), v))
    return [UNK, *ordered]


def fit_scaler(values: np.ndarray, log1p: bool) -> Scaler:
    """Mean, standard deviation, minimum and range of the (``log1p``'d) finite ``values``."""
    v = Scaler(log1p, 0.0, 1.0, 0.0, 1.0).prepare(values)
    v = v[np.isfinite(v)]
    if not len(v):
        return Scaler(log1p, None, 1.0, 0.0, 1.0)
    std, lo, hi = float(v.std()), float(v.min()), float(v.max())
    return Scaler(log1p, float(v.mean()), std if std > 0 else 1.0, lo, hi - lo if hi > lo else 1.0)


def fit_pca(z: np.ndarray, inputs: list[str], n_components: int, seed: int) -> Pca | None:
    """PCA of the training entities' standardised values ``z`` (None if nothing to fit)."""
    k = min(n_components, len(inputs), len(z))
    if k < 1:
        return None
    model = PCA(n_components=k, random_state=seed).fit(np.asarray(z, dtype=np.float64))
    return Pca(list(inputs), model.mean_.astype(np.float64), model.components_.astype(np.float64))


def fit_table(
    train: pd.DataFrame,
    table: str,
    spec: FeatureSpec,
    separators: Mapping[str, str],
    base: NumericParams,
    cfg: Mapping[str, Any],
) -> tuple[TableParams, FeatureSpec]:
    """Vocabularies, scalers and PCA fitted on ``train`` (the training entities of ``table``,
    outliers handled and gaps filled by ``base``); returns them and the final feature spec."""
    min_count = int(cfg["min_category_count"])
    categorical = {c: build_vocab(train[c], min_count) for c in spec.categorical}
    multi = {c: build_vocab(split_multi(train[c], separators[c]), min_count) for c in spec.multi_hot}
    logs = set(cfg["log_numeric"])
    scalers = {c: fit_scaler(train[c].to_numpy(np.float64), c in logs) for c in spec.numeric}
    numeric = replace(base, scalers=scalers)
    pca_cfg = cfg["pca"]
    if pca_cfg["enabled"] and table in pca_cfg["tables"] and len(spec.numeric) > 1:
        z = numeric.scale(train)[[f"{c}_z" for c in spec.numeric]].to_numpy(np.float64)
        pca = fit_pca(z, spec.numeric, int(pca_cfg["n_components"]), int(cfg["seed"]))
        if pca is not None:
            comps = pca.transform(z)
            scalers |= {n: fit_scaler(comps[:, i], False) for i, n in enumerate(pca.names)}
            numeric = replace(base, scalers=scalers, pca=pca)
    params = TableParams(categorical, multi, {c: separators[c] for c in spec.multi_hot}, numeric)
    return params, FeatureSpec(spec.categorical, spec.multi_hot, numeric.names)
