"""Plan files: Parquet (explanation as a struct) and CSV (explanation as JSON text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.errors import DataError
from recsys.rules.explain import explanations_as_json


def write_plan_parquet(plan: pd.DataFrame, path: Path) -> None:
    """Write without pandas metadata so that any Parquet reader opens the struct column."""
    table = pa.Table.from_pandas(plan, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def write_plan_csv(plan: pd.DataFrame, path: Path) -> None:
    out = plan.copy()
    if "explanation" in out.columns:
        out["explanation"] = explanations_as_json(out["explanation"])
    out.to_csv(path, index=False)


def read_candidates(path: Path | str) -> pd.DataFrame:
    """A candidate frame from Parquet (or CSV)."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError("candidates file not found", file=str(path)) from None
    except Exception as err:  # pyarrow / parser errors come in several types
        raise DataError(f"unreadable candidates file ({err})", file=str(path)) from None
