"""Privacy at ingestion: keyed-hash pseudonymisation of customer ids and PII removal."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from recsys.data.quality import QualityReport
from recsys.errors import ConfigError


def pseudonymise(ids: pd.Series, key: str, length: int) -> pd.Series:
    """HMAC-SHA256 of each id with ``key``, truncated to ``length`` hex characters; hashed once per
    distinct id so that a million interactions cost as many hashes as there are customers."""
    if not key:
        raise ConfigError("preprocess.privacy.key is empty: set it or RECSYS_PSEUDONYM_KEY")
    codes, uniques = pd.factorize(ids.astype(str))
    k = key.encode()
    hashed = [hmac.new(k, u.encode(), hashlib.sha256).hexdigest()[:length] for u in uniques]
    return pd.Series(pd.Index(hashed, dtype="object").take(codes), index=ids.index, dtype="object")


def strip_pii(df: pd.DataFrame, table: str, actions: dict[str, str], report: QualityReport) -> pd.DataFrame:
    """``drop`` removes a PII column; ``coarsen`` keeps a coarse form (postal-code prefix, e-mail
    domain, name initial) that can serve as a region-like category."""
    for col, action in actions.items():
        if col not in df.columns:
            continue
        if action == "drop":
            df = df.drop(columns=[col])
        elif action == "coarsen":
            df = df.assign(**{col: _coarsen(df[col].astype("string"), col)})
        else:
            raise ConfigError(f"data.tables.{table}.pii.{col}: unknown action {action!r} (drop, coarsen)")
        report.step(table, f"pii {action} {col}", len(df), len(df))
    return df


def _coarsen(s: pd.Series, col: str) -> pd.Series:
    if "mail" in col:
        return s.str.split("@").str[-1]
    if "name" in col:
        return s.str[:1]
    return s.str[:3]
