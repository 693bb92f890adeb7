"""Fit every statistic on the training split, apply it to every row.

Interactions: outlier fences from the training rows. Users and items: outlier fences, missing-value
fills, vocabularies, scalers and PCA from the *training entities* (those in a training
interaction); item prices missing from the catalogue from the prices paid in training;
``first_seen`` from the training timestamps (null for items never bought in training).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from recsys.data import clean, integrate
from recsys.data.fitted import FittedParams, NumericParams, TableParams
from recsys.data.quality import QualityReport
from recsys.data.source_config import SourceConfig, TableSpec
from recsys.data.transform import FeatureSpec, fit_table

_USER_CATEGORICAL = ("gender", "region", "occupation", "income_band", "preferred_channel")
_BASE_NUMERIC = {"users": ["age"], "items": ["price"]}
_KEYS = {"users": "user_id", "items": "item_id"}


@dataclass(frozen=True)
class Applied:
    """Tables and split frames with the fitted statistics applied, the statistics themselves and
    the feature specs of the users and items tables."""

    tables: dict[str, pd.DataFrame]
    frames: dict[str, pd.DataFrame]
    params: FittedParams
    specs: dict[str, FeatureSpec]


def _numeric(df: pd.DataFrame, spec: TableSpec, base: list[str]) -> list[str]:
    cols = [c for c in base if c in df.columns and df[c].notna().any()] + spec.numeric
    return list(dict.fromkeys(cols))


def feature_specs(train_users: pd.DataFrame, train_items: pd.DataFrame, source: SourceConfig
                  ) -> dict[str, FeatureSpec]:
    """Encoded features of users and items: configured ones plus the standard columns that hold
    values for some training entity."""
    uspec, ispec = source.tables["users"], source.tables["items"]
    ucat = [c for c in _USER_CATEGORICAL if c in train_users.columns and train_users[c].notna().any()]
    return {
        "users": FeatureSpec(list(dict.fromkeys(ucat + uspec.categorical)), list(uspec.multi_hot),
                             _numeric(train_users, uspec, _BASE_NUMERIC["users"])),
        "items": FeatureSpec(ispec.categorical, list(ispec.multi_hot),
                             _numeric(train_items, ispec, _BASE_NUMERIC["items"])),
    }


def _in_train(df: pd.DataFrame, table: str, train: pd.DataFrame) -> pd.DataFrame:
    key = _KEYS[table]
    return df[df[key].isin(train[key])]


def _references(tables: dict[str, pd.DataFrame], frames: dict[str, pd.DataFrame], policy: str,
                report: QualityReport) -> None:
    """After entity outliers were dropped: interactions and user images naming them go too."""
    users, items = tables["users"], tables["items"]
    for name, df in frames.items():
        frames[name] = integrate.check_references(df, users, items, policy, report)
    tables["interactions"] = pd.concat([frames[k] for k in frames]) if frames else tables["interactions"]
    uimg = tables["user_images"]
    if len(uimg):
        tables["user_images"] = report.reject(
            "user_images", uimg, ~uimg["user_id"].isin(users["user_id"]),
            "user_id not found in the users table", "user_id", policy=policy)


def first_seen(items: pd.DataFrame, train: pd.DataFrame) -> pd.Series:
    """Each item's first training timestamp (NaT if never in training or without timestamps)."""
    ts = pd.to_datetime(train["timestamp"], errors="coerce")
    first = ts.groupby(train["item_id"].astype(str).to_numpy()).min()
    return items["item_id"].astype(str).map(first).astype("datetime64[ns]")


def fit_apply(
    tables: dict[str, pd.DataFrame],
    frames: dict[str, pd.DataFrame],
    source: SourceConfig,
    pre: Mapping[str, Any],
    report: QualityReport,
) -> Applied:
    """Fit on ``frames["train"]`` and its entities, apply to all rows (see the module doc)."""
    tables, frames = dict(tables), dict(frames)
    outl = pre["outliers"]
    cols = outl["columns"]
    action = str(outl["action"])
    inter = NumericParams(clean.fit_fences(frames["train"], list(cols.get("interactions", [])), outl),
                          action)
    frames = {k: clean.apply_outliers(v, "interactions", inter, None) for k, v in frames.items()}
    tables["interactions"] = clean.apply_outliers(tables["interactions"], "interactions", inter, report)
    train = frames["train"]
    base: dict[str, NumericParams] = {}
    sizes = {name: len(tables[name]) for name in ("users", "items")}
    for name in ("users", "items"):
        fences = clean.fit_fences(_in_train(tables[name], name, train), list(cols.get(name, [])), outl)
        base[name] = NumericParams(fences, action)
        tables[name] = clean.apply_outliers(tables[name], name, base[name], report)
    if any(len(tables[name]) < n for name, n in sizes.items()):
        _references(tables, frames, str(pre["on_unknown_ids"]), report)
        train = frames["train"]
    imputer = integrate.fit_item_prices(train)
    items, filled = imputer.apply(tables["items"])
    report.step("items", "price from training transactions", len(items), len(items), filled=filled)
    tables["items"] = items.assign(first_seen=first_seen(items, train))
    specs = feature_specs(_in_train(tables["users"], "users", train),
                          _in_train(tables["items"], "items", train), source)
    params: dict[str, TableParams] = {"interactions": TableParams(numeric=inter)}
    for name in ("users", "items"):
        df, spec = tables[name], specs[name]
        fill = clean.fit_fill(_in_train(df, name, train), spec.numeric)
        base[name] = replace(base[name], fill=fill)
        df = base[name].fill_missing(df)
        report.step(name, "missing values", len(df), len(df),
                    **{c: int(df[f"{c}_missing"].sum()) for c in fill})
        report.record_nulls(name, df)
        params[name], specs[name] = fit_table(_in_train(df, name, train), name, spec,
                                              source.tables[name].multi_hot, base[name], pre)
        tables[name] = params[name].encode(df)
        report.step(name, "encode", len(df), len(df), categorical=len(spec.categorical),
                    multi_hot=len(spec.multi_hot), numeric=len(specs[name].numeric))
    for name in ("interactions", "user_images"):
        report.record_nulls(name, tables[name])
    fitted_on = {"split": "train", "rows": len(train),
                 "users": int(train["user_id"].nunique()), "items": int(train["item_id"].nunique())}
    return Applied(tables, frames, FittedParams(params, imputer, fitted_on), specs)


__all__ = ["Applied", "feature_specs", "first_seen", "fit_apply"]
