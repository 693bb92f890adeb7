"""Reading raw CSV / Parquet files with errors that name the file, row and column."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
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
    """Read one raw table; ``string_columns`` keep their text (ids with leading zeros) and come
    back from a CSV as categoricals; other CSV columns get the types Arrow infers.

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
    """Arrow's multithreaded CSV reader; ``string_columns`` become pandas categoricals with sorted
    categories. A value that does not fit the type Arrow inferred from the first block (a word in
    a number column) makes every column text, so the row-level checks can name the row."""
    if path.stat().st_size == 0:
        raise DataError("file is empty", file=str(path))
    header = _header(path, delimiter, encoding)
    text = [c for c in header if c in set(string_columns)]
    try:
        table = _arrow_csv(path, delimiter, encoding, text)
    except pa.ArrowInvalid as err:
        if "conversion error" not in str(err) or "UTF8" in str(err):
            raise _csv_error(err, path, encoding) from None
        text = header
        try:
            table = _arrow_csv(path, delimiter, encoding, text)
        except pa.ArrowInvalid as err2:
            raise _csv_error(err2, path, encoding) from None
    names = table.column_names
    with ThreadPoolExecutor(max_workers=pa.cpu_count()) as pool:  # Arrow and numpy release the GIL
        converted = pool.map(_categorical, [table.column(c) for c in names if c in text])
        categoricals = dict(zip([c for c in names if c in text], converted, strict=True))
    table = table.drop_columns([c for c in names if c in text])
    frame = table.to_pandas(date_as_object=False, self_destruct=True)
    del table
    return pd.DataFrame({c: categoricals[c] if c in categoricals else frame[c] for c in names}, copy=False)


def _arrow_csv(path: Path, delimiter: str, encoding: str, text: list[str]) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(text, pa.string()),
                                             strings_can_be_null=True),
    )


def _categorical(col: pa.ChunkedArray) -> pd.Categorical:
    """A string column as a categorical with sorted categories (nulls are missing values)."""
    # one dictionary for the whole column; string offsets are 32-bit, so huge columns go large
    col = (col if col.nbytes < 2**31 - 1 else col.cast(pa.large_string())).combine_chunks()
    encoded = pc.dictionary_encode(col)
    dictionary, indices = encoded.dictionary, encoded.indices
    order = pc.array_sort_indices(dictionary)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order.to_numpy()] = np.arange(len(order), dtype=np.int32)
    codes = rank.take(pc.fill_null(indices, 0).to_numpy())
    if indices.null_count:
        codes[pc.is_null(indices).to_numpy(zero_copy_only=False)] = -1
    categories = pd.Index(dictionary.take(order).to_pandas())
    return pd.Categorical.from_codes(codes, categories, validate=False)


def _csv_error(err: pa.ArrowInvalid, path: Path, encoding: str) -> DataError:
    message = str(err).splitlines()[0]
    if "UTF8" in message:
        return DataError(f"cannot decode as {encoding} ({message})", file=str(path))
    return DataError(f"cannot parse CSV: {message}", file=str(path))


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
    first = first.removeprefix("\ufeff")  # a UTF-8 byte-order mark, which Arrow skips too
    names = [h.strip().strip('"') for h in first.rstrip("\r\n").split(delimiter)]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise DataError(f"repeated column name(s) {repeated} in the header", file=str(path), column=repeated[0])
    return names


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
