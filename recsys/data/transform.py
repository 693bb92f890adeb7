"""Transformation: categorical vocabularies with an OOV bucket, multi-hot fields, standardisation,
min-max normalisation and optional PCA on numeric features."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from recsys.data.quality import QualityReport
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


def encode_categorical(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Indices into ``vocab``; missing and unseen values map to 0."""
    lookup = pd.Index(vocab[1:])
    idx = lookup.get_indexer(values.astype("string").fillna(UNK))
    return (idx + 1).astype(np.int64)


def encode_multi_hot(values: pd.Series, sep: str, min_count: int) -> tuple[list[np.ndarray], list[str]]:
    """Split ``a|b|c`` fields; returns per-row index arrays and the vocabulary."""
    lists = values.astype("string").fillna("").str.split(sep)
    exploded = lists.explode()
    exploded = exploded[exploded.str.len() > 0]
    vocab = build_vocab(exploded, min_count)
    codes = encode_categorical(exploded, vocab)
    rows = exploded.index.to_numpy()
    per_row: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(values)
    if len(rows):
        pos = pd.Index(values.index).get_indexer(rows)
        order = np.argsort(pos, kind="stable")
        pos, codes = pos[order], codes[order]
        bounds = np.searchsorted(pos, np.arange(len(values) + 1))
        per_row = [codes[bounds[i]:bounds[i + 1]] for i in range(len(values))]
    return per_row, vocab


def scale_numeric(df: pd.DataFrame, columns: list[str], log_columns: list[str]) -> pd.DataFrame:
    """Adds ``<col>_z`` (standardised) and ``<col>_mm`` (min-max to [0, 1]) float32 columns."""
    new: dict[str, np.ndarray] = {}
    for col in columns:
        v = df[col].astype("float64").to_numpy()
        if col in log_columns:
            v = np.log1p(np.clip(v, 0, None))
        mean, std = np.nanmean(v), np.nanstd(v)
        lo, hi = np.nanmin(v), np.nanmax(v)
        new[f"{col}_z"] = np.nan_to_num((v - mean) / (std if std > 0 else 1.0)).astype(np.float32)
        new[f"{col}_mm"] = np.nan_to_num((v - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    return df.assign(**new)


def add_pca(df: pd.DataFrame, columns: list[str], n_components: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """PCA over the standardised numeric columns; adds ``pca<i>`` numeric features."""
    k = min(n_components, len(columns), len(df))
    if k < 1:
        return df, []
    x = df[[f"{c}_z" for c in columns]].to_numpy(np.float64)
    comps = PCA(n_components=k, random_state=seed).fit_transform(x)
    names = [f"pca{i}" for i in range(k)]
    df = df.assign(**{n: comps[:, i] for i, n in enumerate(names)})
    return scale_numeric(df, names, []), names


def encode_table(
    df: pd.DataFrame,
    table: str,
    spec: FeatureSpec,
    multi_sep: Mapping[str, str],
    cfg: Mapping[str, Any],
    report: QualityReport,
) -> tuple[pd.DataFrame, dict[str, list[str]], FeatureSpec]:
    """Encode one entity table; returns the table, its vocabularies and the final feature spec."""
    vocabs: dict[str, list[str]] = {}
    min_count = int(cfg["min_category_count"])
    enc: dict[str, Any] = {}
    for col in spec.categorical:
        vocab = build_vocab(df[col], min_count)
        vocabs[f"{table}.{col}"] = vocab
        enc[f"{col}_idx"] = encode_categorical(df[col], vocab)
    for col in spec.multi_hot:
        per_row, vocab = encode_multi_hot(df[col], multi_sep[col], min_count)
        vocabs[f"{table}.{col}"] = vocab
        enc[f"{col}_multi"] = per_row
    df = df.assign(**enc)
    df = scale_numeric(df, spec.numeric, list(cfg["log_numeric"]))
    numeric = list(spec.numeric)
    pca = cfg["pca"]
    if pca["enabled"] and table in pca["tables"] and len(spec.numeric) > 1:
        df, names = add_pca(df, spec.numeric, int(pca["n_components"]), int(cfg["seed"]))
        numeric += names
    report.step(table, "encode", len(df), len(df), categorical=len(spec.categorical),
                multi_hot=len(spec.multi_hot), numeric=len(numeric))
    return df, vocabs, FeatureSpec(spec.categorical, spec.multi_hot, numeric)
