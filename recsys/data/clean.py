"""Cleaning: deduplication, validity ranges, statistical outliers, missing values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.quality import ROW, QualityReport
from recsys.data.schema import SCHEMAS
from recsys.errors import ConfigError


def deduplicate(df: pd.DataFrame, table: str, mode: str, report: QualityReport) -> pd.DataFrame:
    """Interactions: ``aggregate`` sums quantity of identical rows, ``drop`` keeps one, ``error``
    rejects. Users/items: a repeated key is rejected (error or quarantine), the first row kept."""
    n = len(df)
    key = list(SCHEMAS[table].key)
    if not key:
        cols = [c for c in df.columns if c != ROW]
        dup = _duplicated(df, cols)
        if mode == "error":
            df = report.reject(table, df, dup, "duplicate row", cols[0], policy="error")
        elif mode == "aggregate" and "quantity" in df.columns and dup.any():
            others = [c for c in cols if c != "quantity"]
            qty = df.groupby(others, sort=False, dropna=False)["quantity"].transform("sum")
            df = df.assign(quantity=qty.astype("int64"))[~dup]
            report.drop(table, "duplicate row merged into quantity", int(dup.sum()))
        elif mode in ("drop", "aggregate"):
            df = df[~dup]
            report.drop(table, "exact duplicate row", int(dup.sum()))
        else:
            raise ConfigError(f"preprocess.dedup.{table}: unknown mode {mode!r}")
    else:
        dup = df.duplicated(subset=key, keep="first")
        df = report.reject(table, df, dup, f"duplicate {key[0]} (first occurrence kept)", key[0])
    report.step(table, "deduplicate", n, len(df), mode=mode)
    return df


def _duplicated(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    """Exact ``DataFrame.duplicated`` computed only on rows whose row hash repeats (fast on 1M rows)."""
    hashes = pd.util.hash_pandas_object(df[cols], index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    dup = pd.Series(False, index=df.index)
    if candidates.any():
        dup[candidates] = df.loc[candidates, cols].duplicated(keep="first").to_numpy()
    return dup


def check_ranges(
    df: pd.DataFrame, table: str, ranges: Mapping[str, Mapping[str, float]], report: QualityReport
) -> pd.DataFrame:
    """Reject values outside hard validity bounds (negative or absurd price, age, quantity)."""
    n = len(df)
    for col, bounds in ranges.items():
        if col not in df.columns:
            continue
        v = df[col]
        lo, hi = bounds.get("min"), bounds.get("max")
        bad = pd.Series(False, index=df.index)
        if lo is not None:
            bad |= v < lo
        if hi is not None:
            bad |= v > hi
        df = report.reject(table, df, bad.fillna(False), f"{col} outside [{lo}, {hi}]", col)
    report.step(table, "validity ranges", n, len(df))
    return df


def handle_outliers(
    df: pd.DataFrame, table: str, columns: list[str], cfg: Mapping[str, Any], report: QualityReport
) -> pd.DataFrame:
    """Statistical outliers by IQR fences or robust z-score; ``flag`` adds ``<col>_outlier``,
    ``clip`` clips to the fences, ``drop`` removes the rows."""
    method, k, action = cfg["method"], float(cfg["threshold"]), cfg["action"]
    n = len(df)
    counts: dict[str, int] = {}
    for col in columns:
        if col not in df.columns or df[col].notna().sum() < 8:
            continue
        v = df[col].astype("float64")
        lo, hi = _fences(v, method, k)
        out = ((v < lo) | (v > hi)).fillna(False)
        counts[col] = int(out.sum())
        if action == "flag":
            df = df.assign(**{f"{col}_outlier": out.to_numpy()})
        elif action == "clip":
            df = df.assign(**{col: v.clip(lo, hi).astype(df[col].dtype)})
        elif action == "drop":
            df = df[~out]
            report.drop(table, f"{col} statistical outlier", counts[col])
        else:
            raise ConfigError(f"preprocess.outliers.action: unknown {action!r} (flag, clip, drop)")
    report.step(table, f"outliers ({method}, {action})", n, len(df), **counts)
    return df


def _fences(v: pd.Series, method: str, k: float) -> tuple[float, float]:
    if method == "iqr":
        q1, q3 = np.nanpercentile(v, [25, 75])
        scale = (q3 - q1) or float(np.nanstd(v))  # a degenerate IQR (mostly one value) falls back to std
        return float(q1 - k * scale), float(q3 + k * scale)
    if method == "zscore":
        med = float(np.nanmedian(v))
        mad = float(np.nanmedian(np.abs(v - med))) * 1.4826 or float(np.nanstd(v)) or 1.0
        return med - k * mad, med + k * mad
    raise ConfigError(f"preprocess.outliers.method: unknown {method!r} (iqr, zscore)")


def fill_missing(df: pd.DataFrame, table: str, numeric: list[str], report: QualityReport) -> pd.DataFrame:
    """Numeric gaps get the column median (and a ``<col>_missing`` flag); categoricals stay
    null and fall into the out-of-vocabulary bucket at encoding time."""
    filled: dict[str, int] = {}
    for col in numeric:
        if col in df.columns and df[col].isna().any():
            miss = df[col].isna()
            median = df[col].median()
            filled[col] = int(miss.sum())
            df = df.assign(**{col: df[col].fillna(0.0 if pd.isna(median) else median),
                              f"{col}_missing": miss.to_numpy()})
    report.step(table, "missing values", len(df), len(df), **filled)
    return df
