"""The Arrow CSV reader: text columns as categoricals with their exact text, quoting, BOM, CRLF."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.data.readers import read_table


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
