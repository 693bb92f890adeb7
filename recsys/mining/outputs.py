"""Reading a mining directory written by ``recsys-mine``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.errors import DataError


@dataclass(frozen=True)
class MiningOutputs:
    """The tables of a mining directory."""

    path: Path
    rfm: pd.DataFrame
    segments: pd.DataFrame
    profiles: pd.DataFrame
    predictions: pd.DataFrame
    association_rules: pd.DataFrame
    meta: dict[str, Any]

    def user_table(self) -> pd.DataFrame:
        """Scalar per-user columns of segments, predictions and profiles joined on user_idx."""
        out = self.segments.copy()
        for extra in (self.predictions, self.profiles):
            scalar = [
                c for c in extra.columns
                if c not in out.columns and not extra[c].map(lambda v: isinstance(v, list)).any()
            ]
            out = out.merge(extra[["user_idx", *scalar]], on="user_idx", how="left")
        return out


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError("mining output missing; run recsys-mine first", file=str(path)) from None
    except Exception as err:  # pyarrow raises several types for corrupted files
        raise DataError(f"unreadable mining output ({err})", file=str(path)) from None


def load_mining(path: Path | str) -> MiningOutputs:
    """Open the mining directory at ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise DataError("mining directory not found; run recsys-mine first", file=str(path))
    try:
        meta = json.loads((path / "mining.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"unreadable mining metadata ({err})", file=str(path / "mining.json")) from None
    return MiningOutputs(
        path=path,
        rfm=_read(path / "rfm.parquet"),
        segments=_read(path / "segments.parquet"),
        profiles=_read(path / "profiles.parquet"),
        predictions=_read(path / "predictions.parquet"),
        association_rules=_read(path / "association_rules.parquet"),
        meta=meta,
    )
