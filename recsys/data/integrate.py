"""Integration across sources: id mapping, unknown ids, item price from training transactions,
image paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.fitted import PriceImputer
from recsys.data.quality import QualityReport


def check_references(
    inter: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, policy: str, report: QualityReport
) -> pd.DataFrame:
    """Interactions naming users or items absent from their tables are rejected (or quarantined)."""
    n = len(inter)
    inter = report.reject(
        "interactions", inter, ~inter["user_id"].isin(users["user_id"]),
        "user_id not found in the users table", "user_id", policy=policy,
    )
    inter = report.reject(
        "interactions", inter, ~inter["item_id"].isin(items["item_id"]),
        "item_id not found in the items table", "item_id", policy=policy,
    )
    report.step("interactions", "reference check", n, len(inter))
    return inter


def fit_item_prices(train: pd.DataFrame) -> PriceImputer:
    """Median price paid per item in the training interactions, and over all of them (the
    fallback for items not sold in training); items first sold later never see their price."""
    paid = train[["item_id", "price"]].dropna(subset=["price"])
    if not len(paid):
        return PriceImputer(np.zeros(0, dtype=str), np.zeros(0), None)
    med = paid.groupby(paid["item_id"].astype(str))["price"].median()
    return PriceImputer(med.index.to_numpy(dtype=str), med.to_numpy(np.float64),
                        float(paid["price"].median()))


def check_image_paths(
    df: pd.DataFrame, table: str, root: Path, policy: str, report: QualityReport
) -> pd.DataFrame:
    """Image paths must stay inside ``root`` and exist. ``error`` raises on the first bad path;
    ``quarantine`` nulls item paths (the item stays) and removes bad user-image rows."""
    if "image_path" not in df.columns or df["image_path"].isna().all():
        return df
    root_s = str(root.resolve())
    paths = df["image_path"].astype("string")
    full = pd.Series(
        [os.path.normpath(os.path.join(root_s, p)) if isinstance(p, str) else "" for p in paths],
        index=df.index,
    )
    present = paths.notna()
    outside = present & ~full.str.startswith(root_s + os.sep)
    missing = present & ~outside & ~full.map(os.path.isfile)
    n, n_out, n_miss = len(df), int(outside.sum()), int(missing.sum())
    for bad, reason in ((outside, "image path points outside the data root"),
                        (missing, "image file not found")):
        bad = bad.reindex(df.index)
        if not bad.any():
            continue
        if table == "items" and policy == "quarantine":
            df = df.assign(image_path=df["image_path"].where(~bad, pd.NA))
            report.drop(table, f"{reason} (path set to null)", int(bad.sum()))
        else:
            df = report.reject(table, df, bad, reason, "image_path", policy=policy)
    report.step(table, "image paths", n, len(df), missing=n_miss, outside=n_out)
    return df
