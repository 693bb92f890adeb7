"""Privacy at ingestion: keyed-hash pseudonymisation of customer ids and PII removal."""

from __future__ import annotations

import hashlib

import pandas as pd

from recsys.data.quality import QualityReport
from recsys.errors import ConfigError


def pseudonymise(ids: pd.Series, key: str, length: int) -> pd.Series:
    """Keyed BLAKE2b (a MAC; the key is SHA-256 of ``key``) of each id, ``length`` hex characters;
    hashed once per distinct id so that a million interactions cost as many hashes as customers."""
    if not key:
        raise ConfigError("preprocess.privacy.key is empty: set it or RECSYS_PSEUDONYM_KEY")
    cat = ids.astype("category")
    k = hashlib.sha256(key.encode()).digest()
    size = (length + 1) // 2
    hashed = [hashlib.blake2b(str(u).encode(), key=k, digest_size=size).hexdigest()[:length]
              for u in cat.cat.categories.tolist()]
    return cat.cat.rename_categories(hashed)


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
