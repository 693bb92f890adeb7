"""Reading plans and writing outcome logs for the simulator."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd

from recsys.errors import DataError


def read_plan(path: Path) -> pd.DataFrame:
    """A campaign plan (Parquet or CSV)."""
    try:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError("plan not found", file=str(path)) from None
    except Exception as err:  # parser / pyarrow errors come in several types
        raise DataError(f"unreadable plan ({err})", file=str(path)) from None


def write_log(log: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by suffix, through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix == ".parquet":
            log.to_parquet(tmp, index=False)
        else:
            log.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
