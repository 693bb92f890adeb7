"""Cleaning: deduplication, validity ranges (row-level), and outlier fences and missing-value fills
fitted on training rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.fitted import Fence, NumericParams
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


def fit_fences(train: pd.DataFrame, columns: list[str], cfg: Mapping[str, Any]) -> dict[str, Fence]:
    """Outlier fences (IQR or robust z-score, ``cfg.method``/``threshold``) of ``columns`` fitted
    on the training rows; a column with fewer than 8 training values gets none."""
    method, k = cfg["method"], float(cfg["threshold"])
    if cfg["action"] not in ("flag", "clip", "drop"):
        raise ConfigError(f"preprocess.outliers.action: unknown {cfg['action']!r} (flag, clip, drop)")
    fences: dict[str, Fence] = {}
    for col in columns:
        if col not in train.columns or train[col].notna().sum() < 8:
            continue
        fences[col] = Fence(*_fences(train[col].astype("float64"), method, k))
    return fences


def apply_outliers(
    df: pd.DataFrame, table: str, params: NumericParams, report: QualityReport | None
) -> pd.DataFrame:
    """Apply fitted fences: ``flag`` adds ``<col>_outlier``, ``clip`` clips, ``drop`` removes the
    rows (counted in ``report`` when given)."""
    n = len(df)
    df, masks = params.outliers(df)
    if params.outlier_action == "drop":
        out = np.zeros(len(df), dtype=bool)
        for col, mask in masks.items():
            if report is not None:
                report.drop(table, f"{col} statistical outlier", int((mask & ~out).sum()))
            out |= mask
        df = df[~out]
    if report is not None:
        counts = {c: int(m.sum()) for c, m in masks.items()}
        report.step(table, f"outliers ({params.outlier_action})", n, len(df), **counts)
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


def fit_fill(train: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
    """Fill value of each numeric column: its median over the training rows (0 if none).
    Categorical gaps stay null and fall into the out-of-vocabulary bucket at encoding time."""
    out: dict[str, float] = {}
    for col in numeric:
        median = pd.to_numeric(train[col], errors="coerce").median() if col in train.columns else np.nan
        out[col] = 0.0 if pd.isna(median) else float(median)
    return out
