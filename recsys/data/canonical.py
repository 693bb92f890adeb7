"""Map a raw table onto its canonical schema: rename, constants, value maps, derived flags, ratings,
types. Text columns arrive as categoricals, so every per-value step works on the distinct values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.data.quality import ROW, QualityReport
from recsys.data.readers import read_table
from recsys.data.schema import EVENTS, SCHEMAS, Column
from recsys.data.source_config import TableSpec
from recsys.errors import ConfigError, DataError

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}
_CATEGORY_COLUMNS = ("event", "channel")  # canonical text columns kept as categoricals


def load_canonical(spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    """Read ``spec.path`` and return the canonical table plus attribute columns and ``_row``.

    A column the schema allows to be absent (the interactions' timestamp) is all-null when the
    source neither maps nor has it; rows keep the file's order."""
    schema = SCHEMAS[spec.name]
    report.files[spec.name] = str(spec.path)
    sources = {c.name: spec.columns.get(c.name, c.name) for c in schema.columns if c.name not in spec.constants}
    raw = _read(spec, sources)
    n = len(raw)
    df, absent = _assemble(raw, spec, sources)
    del raw
    report.step(spec.name, "read", n, n, file=spec.path.name)
    for name in absent:
        report.step(spec.name, f"no {name} column (all null, file order kept)", n, n)
    if spec.rating is not None:
        df = _apply_rating(df, spec, report)
    df = _coerce_types(df, spec, report, skip=absent)
    if spec.image_path_template and "image_path" in df.columns:
        ids = df[schema.columns[0].name]  # a categorical: one path per distinct id
        paths = [spec.image_path_template.format(item_id=i, user_id=i) for i in ids.cat.categories]
        df["image_path"] = pd.Categorical.from_codes(ids.cat.codes, paths).astype("string")
    return df


def _read(spec: TableSpec, sources: dict[str, str]) -> pd.DataFrame:
    """The raw file, with every text column (ids, events, channels, mapped values, attributes)
    as a categorical; required columns checked."""
    schema = SCHEMAS[spec.name]
    text = [sources[c.name] for c in schema.columns if c.kind in ("id", "str") and c.name in sources]
    text += [sources[c] for c in spec.value_maps if c in sources]
    if spec.date_format and not spec.date_format.startswith(("%Y-%m-%d", "unix")):
        # Arrow parses ISO-8601 dates itself (validated, as fast as the read); other layouts
        # are parsed by the configured format
        text += [sources[c.name] for c in schema.columns if c.kind == "datetime" and c.name in sources]
    mapped_optional = [spec.columns[c.name] for c in schema.columns if c.may_be_absent and c.name in spec.columns]
    required_raw = [sources[c] for c in schema.required if c in sources] + mapped_optional
    return read_table(
        spec.path,
        fmt=spec.fmt,
        delimiter=spec.delimiter,
        encoding=spec.encoding,
        string_columns=list(dict.fromkeys(text + spec.categorical + list(spec.multi_hot))),
        required=list(dict.fromkeys(required_raw + spec.raw_columns)),
        allow_empty=spec.name == "user_images",  # optional: a world without social images
    )


def _assemble(raw: pd.DataFrame, spec: TableSpec, sources: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """The canonical columns (mapped, constant, default, derived, value-mapped), the attributes
    and the raw rating; also the names of the absent columns filled with nulls."""
    n = len(raw)
    out: dict[str, Any] = {ROW: np.arange(1, n + 1, dtype=np.int64)}
    absent: list[str] = []
    for col in SCHEMAS[spec.name].columns:
        source = sources.get(col.name)
        if col.name in spec.constants:
            out[col.name] = _filled(spec.constants[col.name], n, col)
        elif source is not None and source in raw.columns:
            out[col.name] = raw[source]
        elif col.name not in spec.derive:
            out[col.name] = _filled(col.default, n, col)
            absent += [col.name] if col.may_be_absent else []
    for name, rule in spec.derive.items():
        values = raw[rule["column"]].astype("string")
        out[name] = values.isin([str(v) for v in rule["in"]]).to_numpy()
    for attr in spec.categorical + list(spec.multi_hot) + spec.numeric + list(spec.pii) + spec.passthrough:
        if attr not in out:
            out[attr] = raw[attr]
    for name, mapping in spec.value_maps.items():
        out[name] = _map_values(pd.Series(out[name]), mapping)
    if spec.rating is not None:
        rating = spec.rating.column
        if rating not in raw.columns:
            raise ConfigError(
                f"data.tables.{spec.name}.rating sets a threshold but the file has no rating column "
                f"{rating!r} (found {list(raw.columns)[:12]}); name the rating column or remove `rating`",
                file=str(spec.path),
            )
        out.setdefault(rating, raw[rating])
    return pd.DataFrame(out, copy=False), absent


def _filled(value: Any, n: int, col: Column) -> Any:
    """A whole column of ``value`` (a constant or the schema default) of the column's kind."""
    if col.kind in ("id", "str"):
        if value is None:
            return pd.Series(pd.NA, index=pd.RangeIndex(n), dtype="string")
        return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [str(value)])
    if col.kind == "datetime":
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns]")
    return np.full(n, np.nan if value is None else value)


def _map_values(s: pd.Series, mapping: dict[str, Any]) -> pd.Categorical:
    """Replace the values named in ``mapping`` (by their text), once per distinct value; other
    values keep their text."""
    cat = s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("string").astype("category")
    texts = [str(c) for c in cat.cat.categories]
    mapped = np.asarray([c if mapping.get(c) is None else str(mapping[c]) for c in texts], dtype=object)
    uniq, inverse = np.unique(mapped, return_inverse=True) if len(mapped) else (mapped, np.zeros(0, np.int64))
    codes = cat.cat.codes.to_numpy()
    return pd.Categorical.from_codes(np.where(codes >= 0, inverse[codes], -1), uniq)


def _to_number(s: pd.Series) -> pd.Series:
    """Float64 values; NaN where the value is missing or not a number (text parsed once per
    distinct value)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        per_value = pd.to_numeric(pd.Series(s.cat.categories.astype(str)), errors="coerce")
        return _per_category(s, per_value.to_numpy("float64"))
    if pd.api.types.is_numeric_dtype(s):  # bool included: true/false are 1/0
        return s.astype("float64")
    return pd.to_numeric(s.astype("string"), errors="coerce").astype("float64")


def _per_category(s: pd.Series, per_value: np.ndarray) -> pd.Series:
    """``per_value[i]`` (computed once per category ``i``) for each row of the categorical ``s``;
    missing rows get the dtype's missing value."""
    codes = s.cat.codes.to_numpy()
    missing = np.array([np.nan]).astype(per_value.dtype)
    return pd.Series(np.concatenate([per_value, missing])[codes], index=s.index)


def _kept(values: pd.Series, df: pd.DataFrame) -> pd.Series:
    """``values`` (aligned with the frame before a rejection step) for the rows ``df`` kept."""
    return values if len(values) == len(df) else values[df.index]


def _apply_rating(df: pd.DataFrame, spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    """``rating >= threshold`` is a purchase; a lower rating a view or, with ``below: drop``,
    no interaction. A missing or non-numeric rating is rejected with its row and original value."""
    assert spec.rating is not None
    column = spec.rating.column
    rating = _to_number(df[column])
    df = report.reject(spec.name, df, rating.isna() & df[column].isna(), "missing rating", column)
    df = report.reject(spec.name, df, _kept(rating, df).isna(), "rating is not a number", column)
    positive = (_kept(rating, df) >= spec.rating.threshold).to_numpy()
    if column not in spec.raw_columns:
        df = df.drop(columns=[column])
    df["event"] = pd.Categorical.from_codes(np.where(positive, 0, 1).astype(np.int8), ["purchase", "view"])
    if spec.rating.below == "drop":
        n = len(df)
        df = df[positive]
        report.drop(spec.name, f"rating below {spec.rating.threshold:g}", n - len(df))
        report.step(spec.name, "rating threshold", n, len(df), threshold=spec.rating.threshold, below="drop")
    return df


def _coerce_types(df: pd.DataFrame, spec: TableSpec, report: QualityReport, skip: list[str]) -> pd.DataFrame:
    for col in SCHEMAS[spec.name].columns:
        if col.name not in skip:
            df = _coerce(df, col, spec, report)
    for attr in spec.numeric:
        num = _to_number(df[attr])
        bad = num.isna() & df[attr].notna()
        df = report.reject(spec.name, df, bad, "value is not a number", attr)
        df[attr] = _kept(num, df).astype("float64")
    for attr in spec.categorical + list(spec.multi_hot):
        df[attr] = df[attr].astype("string")
    return df


def _coerce(df: pd.DataFrame, col: Column, spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    s = df[col.name]
    name = spec.name
    if col.kind == "id":
        df = report.reject(name, df, s.isna(), "missing id", col.name)
        # ids become categoricals: every later join, dedup and group works on integer codes
        df[col.name] = _text_categories(df[col.name])
    elif col.kind == "datetime":
        if s.isna().all() and not col.required:
            df[col.name] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
            return df
        parsed = _parse_dates(s, spec.date_format)
        bad = parsed.isna() & s.notna() if not col.required else parsed.isna()
        fmt = f" with format {spec.date_format!r}" if spec.date_format else ""
        df = report.reject(name, df, bad, f"unparseable date{fmt}", col.name)
        df[col.name] = _kept(parsed, df).astype("datetime64[ns]")
    elif col.kind in ("float", "int"):
        num = _to_number(s)
        df = report.reject(name, df, num.isna() & s.notna(), "value is not a number", col.name)
        num = _kept(num, df)
        if col.kind == "int":
            num = num.fillna(col.default if col.default is not None else 0).round().astype("int64")
        df[col.name] = num
    elif col.kind == "bool":
        df[col.name] = _parse_bool(s, name, col, report, df)
    elif col.kind == "str":
        if col.name in _CATEGORY_COLUMNS:
            df[col.name] = _text_categories(s)
        else:
            df[col.name] = s.astype("string") if s.notna().any() else pd.Series(pd.NA, index=df.index, dtype="string")
        if col.name == "event":
            df = report.reject(name, df, ~df["event"].isin(EVENTS), f"unknown event (expected {EVENTS})", "event")
    return df


def _text_categories(s: pd.Series) -> pd.Series:
    """A categorical of strings (unused categories dropped)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype("string").astype("category")
    codes = s.cat.codes.to_numpy()
    used = np.bincount(codes[codes >= 0], minlength=len(s.cat.categories)) > 0
    if not used.all():  # cheaper than remove_unused_categories, which sorts every code
        remap = np.cumsum(used) - 1
        s = pd.Series(pd.Categorical.from_codes(np.where(codes >= 0, remap[codes], -1), s.cat.categories[used]),
                      index=s.index)
    if not pd.api.types.is_string_dtype(s.cat.categories):  # e.g. integer ids in a Parquet file
        s = s.cat.rename_categories(s.cat.categories.astype(str))
    if not s.cat.categories.is_monotonic_increasing:  # Arrow keeps first-seen order; pandas sorts
        s = s.cat.reorder_categories(s.cat.categories.sort_values())
    return s


def _parse_dates(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    if fmt in ("unix", "unix_ms"):
        return pd.to_datetime(_to_number(s), unit="s" if fmt == "unix" else "ms")
    if isinstance(s.dtype, pd.CategoricalDtype):  # a date layout Arrow does not parse: once per value
        per_value = pd.to_datetime(pd.Series(s.cat.categories.astype(str)), format=fmt, errors="coerce")
        return _per_category(s, per_value.to_numpy("datetime64[ns]"))
    return pd.to_datetime(s.astype("string"), format=fmt, errors="coerce")


def _parse_bool(
    s: pd.Series, table: str, col: Column, report: QualityReport, df: pd.DataFrame
) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(bool)
    text = s.astype("string").str.strip().str.lower().fillna("")
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        row = int(df.loc[bad, ROW].iloc[0])
        raise DataError(
            f"expected a boolean (true/false/1/0/yes/no), got {s[bad].iloc[0]!r}",
            file=report.files.get(table), row=row, column=col.name,
        )
    return text.isin(_TRUE)
