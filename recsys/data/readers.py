"""Reading raw CSV / Parquet files with errors that name the file, row and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.errors import DataError


def read_table(
    path: Path,
    *,
    fmt: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    string_columns: list[str] | None = None,
    required: list[str] | None = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read one raw table; ``string_columns`` keep their text (ids with leading zeros).

    Raises :class:`DataError` for a missing file, an undecodable or corrupted file, a wrong
    delimiter, an empty table or a missing required column.
    """
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    fmt = fmt or ("parquet" if path.suffix in {".parquet", ".pq"} else "csv")
    if fmt == "parquet":
        df = _read_parquet(path)
    elif fmt == "csv":
        df = _read_csv(path, delimiter, encoding, string_columns or [])
    else:
        raise DataError(f"unknown format {fmt!r} (expected csv or parquet)", file=str(path))
    if required:
        _check_columns(df, path, required, delimiter if fmt == "csv" else None)
    if len(df) == 0 and not allow_empty:
        raise DataError("table is empty (no data rows)", file=str(path))
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise DataError(f"not a readable Parquet file ({err})", file=str(path)) from None


def _read_csv(path: Path, delimiter: str, encoding: str, string_columns: list[str]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError("file is empty", file=str(path))
    header = _header(path, delimiter, encoding)
    dtypes: dict[str, Any] = {c: "string" for c in string_columns if c in header}
    try:
        return pd.read_csv(path, sep=delimiter, encoding=encoding, dtype=dtypes, engine="c")
    except UnicodeDecodeError as err:
        raise DataError(f"cannot decode as {encoding} ({err.reason} at byte {err.start})", file=str(path)) from None
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"cannot parse CSV: {str(err).splitlines()[0]}", file=str(path)) from None


def _header(path: Path, delimiter: str, encoding: str) -> list[str]:
    """The header fields; decoding errors surface here with the byte position."""
    try:
        with path.open(encoding=encoding, newline="") as fh:
            first = fh.readline()
            fh.read(1 << 20)  # decode the first MiB now: a wrong encoding fails early and clearly
    except UnicodeDecodeError as err:
        raise DataError(
            f"cannot decode as {encoding} at byte {err.start} ({err.reason}); set the table's "
            "`encoding` in the data config",
            file=str(path),
        ) from None
    return [h.strip().strip('"') for h in first.rstrip("\r\n").split(delimiter)]


def _check_columns(df: pd.DataFrame, path: Path, required: list[str], delimiter: str | None) -> None:
    missing = [c for c in required if c not in df.columns]
    if not missing:
        return
    hint = ""
    if delimiter is not None and len(df.columns) == 1:
        other = next((d for d in (";", "\t", "|", ",") if d != delimiter and d in df.columns[0]), None)
        if other:
            hint = f"; the header looks {other!r}-delimited, not {delimiter!r}: set `delimiter`"
    raise DataError(
        f"missing required column(s) {missing}; found {list(df.columns)[:12]}{hint}",
        file=str(path),
        column=missing[0],
    )
