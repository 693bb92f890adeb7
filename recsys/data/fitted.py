"""Statistics fitted on the training split and applied to every row (train, validation, test,
and new rows at serving time).

They are saved with the processed dataset as plain JSON (``fitted.json``) plus ``.npy`` files for
arrays (PCA mean and components, per-item price medians), never pickled; vocabularies stay in
``vocabs.json``. :func:`load_fitted` reads them back into the dataclasses below, whose ``apply``
methods are the very code the data stage used to encode the dataset, so serving reproduces its
encoded values exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import UNK
from recsys.errors import DataError

FITTED = "fitted.json"
VOCABS = "vocabs.json"
FORMAT_VERSION = 1


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
        """``[n, len(names)]`` float32 z-values of raw rows (serving: clip, fill, scale, PCA)."""
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


# ---- saving and loading -------------------------------------------------------------------

def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _npy(arrays: dict[str, np.ndarray], name: str, array: np.ndarray) -> str:
    arrays[name] = array
    return name


def _numeric_dict(p: NumericParams, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    pca = None
    if p.pca is not None:
        pca = {"inputs": p.pca.inputs,
               "mean": _npy(arrays, f"{prefix}.pca_mean.npy", p.pca.mean),
               "components": _npy(arrays, f"{prefix}.pca_components.npy",
                                  p.pca.components)}
    return {
        "outliers": {"action": p.outlier_action,
                     "fences": {c: {"lo": f.lo, "hi": f.hi} for c, f in p.fences.items()}},
        "fill": p.fill,
        "scalers": {c: {"log1p": s.log1p, "mean": _num(s.mean), "std": s.std, "min": s.min,
                        "range": s.range} for c, s in p.scalers.items()},
        "pca": pca,
    }


def to_files(params: FittedParams) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``fitted.json`` payload and the ``{file name: array}`` saved beside it."""
    arrays: dict[str, np.ndarray] = {}
    tables = {name: {"separators": p.separators,
                     "numeric": _numeric_dict(p.numeric, f"fitted.{name}", arrays)}
              for name, p in params.tables.items()}
    price = params.item_price
    payload = {
        "format_version": FORMAT_VERSION,
        "fitted_on": params.fitted_on,
        "tables": tables,
        "item_price": {"global_median": _num(price.global_median),
                       "item_ids": _npy(arrays, "fitted.items.price_ids.npy",
                                        price.item_ids.astype(str)),
                       "medians": _npy(arrays, "fitted.items.price_medians.npy",
                                       price.medians.astype(np.float64))},
    }
    return payload, arrays


def save_fitted(directory: Path, params: FittedParams) -> None:
    """Write ``fitted.json``, its ``.npy`` arrays and ``vocabs.json`` into ``directory`` (the
    temporary directory of the dataset's atomic write)."""
    payload, arrays = to_files(params)
    for name, array in arrays.items():
        np.save(directory / name, array, allow_pickle=False)
    (directory / FITTED).write_text(json.dumps(payload, indent=2))
    (directory / VOCABS).write_text(json.dumps(params.vocabs()))


def numeric_from_dict(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> NumericParams:
    """Inverse of the ``numeric`` block of ``fitted.json``; ``arrays`` maps the PCA file names
    (or holds the arrays themselves as lists, as a serving bundle stores them)."""
    def arr(ref: Any) -> np.ndarray:
        return np.asarray(arrays[ref] if isinstance(ref, str) else ref, dtype=np.float64)

    pca = data.get("pca")
    return NumericParams(
        fences={c: Fence(float(f["lo"]), float(f["hi"]))
                for c, f in data["outliers"]["fences"].items()},
        outlier_action=str(data["outliers"]["action"]),
        fill={c: float(v) for c, v in data["fill"].items()},
        scalers={c: Scaler(bool(s["log1p"]), None if s["mean"] is None else float(s["mean"]),
                           float(s["std"]), float(s["min"]), float(s["range"]))
                 for c, s in data["scalers"].items()},
        pca=None if pca is None else Pca(list(pca["inputs"]), arr(pca["mean"]),
                                         arr(pca["components"])),
    )


def numeric_to_dict(p: NumericParams) -> dict[str, Any]:
    """The ``numeric`` block with arrays inlined as lists (exact: JSON keeps float64)."""
    arrays: dict[str, np.ndarray] = {}
    data = _numeric_dict(p, "inline", arrays)
    if data["pca"] is not None:
        data["pca"] = {**data["pca"], "mean": arrays[data["pca"]["mean"]].tolist(),
                       "components": arrays[data["pca"]["components"]].tolist()}
    return data


def load_fitted(directory: Path | str) -> FittedParams:
    """Read the fitted statistics of a processed dataset directory."""
    root = Path(directory)
    path = root / FITTED
    if not path.is_file():
        raise DataError("dataset has no fitted statistics (fitted.json); rerun recsys-data",
                        file=str(root))
    try:
        data = json.loads(path.read_text())
        vocabs: dict[str, list[str]] = json.loads((root / VOCABS).read_text())
        refs = [t["numeric"]["pca"] for t in data["tables"].values() if t["numeric"]["pca"]]
        names = [r[k] for r in refs for k in ("mean", "components")]
        names += [data["item_price"]["item_ids"], data["item_price"]["medians"]]
        arrays = {n: np.load(root / n, allow_pickle=False) for n in names}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"unreadable fitted statistics ({err})", file=str(path)) from None
    tables: dict[str, TableParams] = {}
    for name, t in data["tables"].items():
        seps = dict(t["separators"])
        own = {k.split(".", 1)[1]: v for k, v in vocabs.items() if k.split(".", 1)[0] == name}
        tables[name] = TableParams(
            categorical={c: v for c, v in own.items() if c not in seps},
            multi_hot={c: v for c, v in own.items() if c in seps},
            separators=seps, numeric=numeric_from_dict(t["numeric"], arrays))
    price = data["item_price"]
    imputer = PriceImputer(arrays[price["item_ids"]], arrays[price["medians"]],
                           price["global_median"])
    return FittedParams(tables, imputer, dict(data.get("fitted_on", {})))
