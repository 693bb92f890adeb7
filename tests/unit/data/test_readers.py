"""The Arrow CSV reader: text columns as categoricals with their exact text, quoting, BOM, CRLF."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from datafixtures import make_cfg

from recsys.data.canonical import load_canonical
from recsys.data.quality import QualityReport
from recsys.data.readers import read_table
from recsys.data.source_config import parse_source_config
from recsys.errors import DataError


def test_text_columns_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(
        "\ufeffitem,title,year,poster\r\n"
        '0007,"Line one\r\nline two",1999,posters/7.jpg\r\n'
        '0012,"Comma, ""quoted""",,\r\n'
        "0003,Plain,2001,posters/3.jpg\r\n".encode()
    )
    df = read_table(path, string_columns=["item", "title", "poster"], required=["item", "title"])
    assert list(df.columns) == ["item", "title", "year", "poster"]
    assert isinstance(df["item"].dtype, pd.CategoricalDtype) and isinstance(df["title"].dtype, pd.CategoricalDtype)
    assert df["item"].astype(str).tolist() == ["0007", "0012", "0003"]  # file order, leading zeros
    assert list(df["item"].cat.categories) == ["0003", "0007", "0012"]  # sorted categories
    assert df["title"].astype(str).tolist() == ["Line one\r\nline two", 'Comma, "quoted"', "Plain"]
    assert df["poster"].isna().tolist() == [False, True, False]  # an empty cell is missing
    assert df["year"].isna().tolist() == [False, True, False] and df["year"].max() == 2001


def test_dates_in_a_configured_layout(raw_dir: Path, tmp_path: Path) -> None:
    """A non-ISO `date_format` is parsed by that format (once per distinct value); an impossible
    date is reported with its row and original text."""
    path = raw_dir / "interactions.csv"
    df = pd.read_csv(path, dtype=str)
    iso = pd.to_datetime(df["day"])
    df["day"] = iso.dt.strftime("%d/%m/%Y")
    df.to_csv(path, index=False)
    cfg = make_cfg(raw_dir, tmp_path / "o", **{"data.tables.interactions.date_format": "%d/%m/%Y"})
    spec = parse_source_config(cfg.data).tables["interactions"]
    inter = load_canonical(spec, QualityReport())
    assert (inter["timestamp"].to_numpy() == iso.to_numpy()).all()
    df.loc[17, "day"] = "31/02/2024"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_canonical(spec, QualityReport())
    assert (info.value.row, info.value.column) == (18, "timestamp") and "'31/02/2024'" in str(info.value)
