"""Statistics fitted on the training split and applied to every row (train, validation, test,
and new rows at serving time).

They are saved with the processed dataset as plain JSON plus ``.npy`` arrays
(:mod:`recsys.data.fitted_io`). The methods of the dataclasses below are the very code the data
stage used to encode the dataset, so serving reproduces its encoded values exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import UNK


@dataclass(frozen=True)
class Fence:
    """Outlier fences of one column: values outside ``[lo, hi]`` are outliers."""

    lo: float
    hi: float


@dataclass(frozen=True)
class Scaler:
    """``<col>_z = (v - mean) / std`` and ``<col>_mm = (v - min) / range`` with ``v`` the value
    (``log1p(max(value, 0))`` when ``log1p``); ``mean`` None (no training value) gives zeros.
    Missing values encode as 0."""

    log1p: bool
    mean: float | None
    std: float
    min: float
    range: float

    def prepare(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.log1p(np.clip(v, 0, None)) if self.log1p else v

    def z(self, values: np.ndarray) -> np.ndarray:
        if self.mean is None:
            return np.zeros(len(values), dtype=np.float32)
        return np.nan_to_num((self.prepare(values) - self.mean) / self.std).astype(np.float32)

    def mm(self, values: np.ndarray) -> np.ndarray:
        if self.mean is None:
            return np.zeros(len(values), dtype=np.float32)
        return np.nan_to_num((self.prepare(values) - self.min) / self.range).astype(np.float32)


@dataclass(frozen=True)
class Pca:
    """PCA over the ``<col>_z`` values of ``inputs``: component ``i`` is
    ``sum_j (z_j - mean_j) * components[i, j]``, summed in column order (exact for any batch)."""

    inputs: list[str]
    mean: np.ndarray  # [d]
    components: np.ndarray  # [k, d]

    @property
    def names(self) -> list[str]:
        return [f"pca{i}" for i in range(self.components.shape[0])]

    def transform(self, z: np.ndarray) -> np.ndarray:
        x = np.asarray(z, dtype=np.float64)
        out = np.zeros((x.shape[0], self.components.shape[0]), dtype=np.float64)
        for i in range(self.components.shape[0]):
            for j in range(x.shape[1]):
                out[:, i] += (x[:, j] - self.mean[j]) * self.components[i, j]
        return out


@dataclass(frozen=True)
class NumericParams:
    """Outlier handling, missing-value fill, scaling and PCA of a table's numeric columns."""

    fences: dict[str, Fence] = field(default_factory=dict)
    outlier_action: str = "flag"
    fill: dict[str, float] = field(default_factory=dict)
    scalers: dict[str, Scaler] = field(default_factory=dict)
    pca: Pca | None = None

    @property
    def columns(self) -> list[str]:
        """Raw numeric feature columns, in feature order."""
        derived = set(self.pca.names) if self.pca is not None else set()
        return [c for c in self.scalers if c not in derived]

    @property
    def names(self) -> list[str]:
        """Encoded numeric features (``<name>_z``), in feature order: raw columns then PCA."""
        return list(self.scalers)

    def outliers(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """Applies the fences (``flag`` adds ``<col>_outlier``, ``clip`` clips); returns the
        frame and each column's outlier mask (``drop`` is left to the caller)."""
        masks: dict[str, np.ndarray] = {}
        for col, fence in self.fences.items():
            if col not in df.columns:
                continue
            v = df[col].astype("float64")
            masks[col] = ((v < fence.lo) | (v > fence.hi)).fillna(False).to_numpy(bool)
            if self.outlier_action == "flag":
                df = df.assign(**{f"{col}_outlier": masks[col]})
            elif self.outlier_action == "clip":
                df = df.assign(**{col: v.clip(fence.lo, fence.hi).astype(df[col].dtype)})
        return df, masks

    def fill_missing(self, df: pd.DataFrame) -> pd.DataFrame:
        """Gaps take the training median; ``<col>_missing`` flags them."""
        new: dict[str, Any] = {}
        for col, value in self.fill.items():
            v = pd.to_numeric(df[col], errors="coerce") if col in df.columns else \
                pd.Series(np.nan, index=df.index)
            miss = v.isna().to_numpy(bool)
            new[col] = v.fillna(value)
            new[f"{col}_missing"] = miss
        return df.assign(**new)

    def scale(self, df: pd.DataFrame) -> pd.DataFrame:
        """Adds ``<col>_z`` and ``<col>_mm`` for every raw column, then the PCA features."""
        new: dict[str, np.ndarray] = {}
        for col in self.columns:
            v = df[col].to_numpy(np.float64)
            new[f"{col}_z"], new[f"{col}_mm"] = self.scalers[col].z(v), self.scalers[col].mm(v)
        df = df.assign(**new)
        if self.pca is None:
            return df
        comps = self.pca.transform(df[[f"{c}_z" for c in self.pca.inputs]].to_numpy(np.float64))
        pcs: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.pca.names):
            pcs[name] = comps[:, i]
            pcs[f"{name}_z"], pcs[f"{name}_mm"] = (self.scalers[name].z(comps[:, i]),
                                                   self.scalers[name].mm(comps[:, i]))
        return df.assign(**pcs)

    def z_matrix(self, raw: pd.DataFrame) -> np.ndarray:
        """``[n, len(names)]`` float32 z-values of raw rows (serving: clip, fill, scale, PCA; the
        ``drop`` outlier action does not apply to a single new row)."""
        df = raw.copy()
        for col in self.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
        if self.outlier_action == "clip":
            df = self.outliers(df)[0]
        df = self.scale(self.fill_missing(df))
        cols = [df[f"{n}_z"].to_numpy(np.float32) for n in self.names]
        return np.stack(cols, axis=1) if cols else np.zeros((len(raw), 0), dtype=np.float32)


@dataclass(frozen=True)
class TableParams:
    """Everything fitted for one table: categorical and multi-hot vocabularies (index 0 is
    ``<unk>``), multi-hot separators and the numeric parameters."""

    categorical: dict[str, list[str]] = field(default_factory=dict)
    multi_hot: dict[str, list[str]] = field(default_factory=dict)
    separators: dict[str, str] = field(default_factory=dict)
    numeric: NumericParams = field(default_factory=NumericParams)

    def encode(self, df: pd.DataFrame) -> pd.DataFrame:
        """Adds ``<col>_idx``, ``<col>_multi``, ``<col>_z``/``_mm`` and PCA columns."""
        enc: dict[str, Any] = {}
        for col, vocab in self.categorical.items():
            enc[f"{col}_idx"] = encode_categorical(df[col], vocab)
        for col, vocab in self.multi_hot.items():
            enc[f"{col}_multi"] = encode_multi_hot(df[col], self.separators[col], vocab)
        return self.numeric.scale(df.assign(**enc))


@dataclass(frozen=True)
class PriceImputer:
    """Item prices missing from the catalogue: the median price paid for the item in training
    interactions, else the median of all training prices (None: no training prices)."""

    item_ids: np.ndarray  # [n] str
    medians: np.ndarray  # [n] float64
    global_median: float | None

    def apply(self, items: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Fills ``price`` gaps; returns the frame and the number of prices filled."""
        missing = items["price"].isna()
        if not missing.any() or self.global_median is None:
            return items, 0
        per_item = pd.Series(self.medians, index=pd.Index(self.item_ids.astype(str)))
        found = items["item_id"].astype(str).map(per_item).fillna(self.global_median)
        return items.assign(price=items["price"].fillna(found)), int(missing.sum())


@dataclass(frozen=True)
class FittedParams:
    """The fitted statistics of a dataset, per table (``interactions``, ``users``, ``items``)."""

    tables: dict[str, TableParams]
    item_price: PriceImputer
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def apply_rows(self, table: str, raw: pd.DataFrame) -> pd.DataFrame:
        """New raw ``users`` or ``items`` rows (canonical columns) encoded as the dataset's: outliers
        flagged or clipped (a new row is never dropped), item prices imputed, gaps filled, then
        vocabularies, scalers and PCA applied."""
        params = self.tables[table]
        df = params.numeric.outliers(raw)[0]
        if table == "items":
            df = self.item_price.apply(df)[0]
        return params.encode(params.numeric.fill_missing(df))

    def vocabs(self) -> dict[str, list[str]]:
        """``{"<table>.<col>": vocabulary}`` as in ``vocabs.json``."""
        return {f"{t}.{c}": v for t, p in self.tables.items()
                for c, v in {**p.categorical, **p.multi_hot}.items()}


def encode_categorical(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Indices into ``vocab``; missing and unseen values map to 0."""
    lookup = pd.Index(vocab[1:])
    idx = lookup.get_indexer(values.astype("string").fillna(UNK))
    return (idx + 1).astype(np.int64)


def split_multi(values: pd.Series, sep: str) -> pd.Series:
    """One row per non-empty element of ``a|b|c`` fields, indexed like ``values``."""
    exploded = values.astype("string").fillna("").str.split(sep, regex=False).explode()
    return exploded[exploded.str.len() > 0]


def encode_multi_hot(values: pd.Series, sep: str, vocab: list[str]) -> list[np.ndarray]:
    """Per row, the indices of its elements in ``vocab`` (0: unseen)."""
    exploded = split_multi(values, sep)
    codes = encode_categorical(exploded, vocab)
    per_row: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(values)
    if len(exploded):
        pos = pd.Index(values.index).get_indexer(exploded.index)
        order = np.argsort(pos, kind="stable")
        pos, codes = pos[order], codes[order]
        bounds = np.searchsorted(pos, np.arange(len(values) + 1))
        per_row = [codes[bounds[i]:bounds[i + 1]] for i in range(len(values))]
    return per_row
