"""Map a raw table onto its canonical schema: rename, constants, value maps, derived flags, types."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.quality import ROW, QualityReport
from recsys.data.readers import read_table
from recsys.data.schema import EVENTS, SCHEMAS, Column
from recsys.data.source_config import TableSpec
from recsys.errors import DataError

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def load_canonical(spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    """Read ``spec.path`` and return the canonical table plus attribute columns and ``_row``."""
    schema = SCHEMAS[spec.name]
    report.files[spec.name] = str(spec.path)
    id_raw = [spec.columns[c.name] for c in schema.columns if c.kind == "id" and c.name in spec.columns]
    required_raw = [spec.columns.get(c, c) for c in schema.required if c not in spec.constants]
    raw = read_table(
        spec.path,
        fmt=spec.fmt,
        delimiter=spec.delimiter,
        encoding=spec.encoding,
        string_columns=id_raw + spec.categorical + list(spec.multi_hot),
        required=list(dict.fromkeys(required_raw + spec.raw_columns)),
        allow_empty=spec.name == "user_images",  # optional: a world without social images
    )
    out = pd.DataFrame({ROW: np.arange(1, len(raw) + 1, dtype=np.int64)})
    for col in schema.columns:
        source = spec.columns.get(col.name, col.name if col.name in raw.columns else None)
        if col.name in spec.constants:
            out[col.name] = spec.constants[col.name]
        elif source is not None and source in raw.columns:
            out[col.name] = raw[source].array
        elif col.name in spec.derive:
            continue
        else:
            out[col.name] = col.default
    for name, rule in spec.derive.items():
        values = raw[rule["column"]].astype("string")
        out[name] = values.isin([str(v) for v in rule["in"]]).to_numpy()
    for attr in spec.categorical + list(spec.multi_hot) + spec.numeric + list(spec.pii) + spec.passthrough:
        if attr not in out.columns:
            out[attr] = raw[attr].array
    for name, mapping in spec.value_maps.items():
        mapped = out[name].astype("string").map(mapping)
        out[name] = mapped.where(mapped.notna(), out[name].astype("string"))
    if spec.rating:
        rating = pd.to_numeric(raw[spec.rating["column"]], errors="coerce")
        out["event"] = np.where(rating >= float(spec.rating["threshold"]), "purchase", "view")
    report.step(spec.name, "read", len(raw), len(out), file=spec.path.name)
    out = _coerce_types(out, spec, report)
    if spec.image_path_template and "image_path" in out.columns:
        ids = out[schema.columns[0].name].astype(str)
        out["image_path"] = [spec.image_path_template.format(item_id=i, user_id=i) for i in ids]
    return out


def _coerce_types(df: pd.DataFrame, spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    for col in SCHEMAS[spec.name].columns:
        df = _coerce(df, col, spec, report)
    for attr in spec.numeric:
        num = pd.to_numeric(df[attr], errors="coerce")
        bad = num.isna() & df[attr].notna()
        df = report.reject(spec.name, df, bad, "value is not a number", attr)
        df[attr] = num[df.index].astype("float64")
    for attr in spec.categorical + list(spec.multi_hot):
        df[attr] = df[attr].astype("string")
    return df


def _coerce(df: pd.DataFrame, col: Column, spec: TableSpec, report: QualityReport) -> pd.DataFrame:
    s = df[col.name]
    name = spec.name
    if col.kind == "id":
        bad = s.isna()
        df = report.reject(name, df, bad, "missing id", col.name)
        # ids become categoricals: every later join, dedup and group works on integer codes
        ids = df[col.name]
        if not isinstance(ids.dtype, pd.CategoricalDtype):
            ids = ids.astype("string").astype("category")
        elif not pd.api.types.is_string_dtype(ids.cat.categories):  # e.g. integer ids in a Parquet file
            ids = ids.cat.rename_categories(ids.cat.categories.astype(str))
        df[col.name] = ids
    elif col.kind == "datetime":
        if s.isna().all() and not col.required:
            df[col.name] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
            return df
        parsed = _parse_dates(s, spec.date_format)
        bad = parsed.isna() & s.notna() if not col.required else parsed.isna()
        fmt = f" with format {spec.date_format!r}" if spec.date_format else ""
        df = report.reject(name, df, bad, f"unparseable date{fmt}", col.name)
        df[col.name] = parsed[df.index].astype("datetime64[ns]")
    elif col.kind in ("float", "int"):
        num = pd.to_numeric(s, errors="coerce")
        df = report.reject(name, df, num.isna() & s.notna(), "value is not a number", col.name)
        num = num[df.index]
        if col.kind == "int":
            num = num.fillna(col.default if col.default is not None else 0).round().astype("int64")
        df[col.name] = num.astype("float64") if col.kind == "float" else num
    elif col.kind == "bool":
        df[col.name] = _parse_bool(s, name, col, report, df)
    elif col.kind == "str":
        df[col.name] = s.astype("string") if s.notna().any() else pd.Series(
            pd.NA, index=df.index, dtype="string"
        )
        if col.name in ("event", "channel"):
            df[col.name] = df[col.name].astype("category")
        if col.name == "event":
            df = report.reject(name, df, ~df["event"].isin(EVENTS), f"unknown event (expected {EVENTS})", "event")
    return df


def _parse_dates(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    if fmt in ("unix", "unix_ms"):
        return pd.to_datetime(pd.to_numeric(s, errors="coerce"), unit="s" if fmt == "unix" else "ms")
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
