"""Every bad input named by the data issue: a clear DataError/ConfigError naming file, row and
column, and no output directory left behind; or quarantined rows counted in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from datafixtures import make_cfg

from recsys.data.pipeline import build_dataset
from recsys.errors import ConfigError, DataError, RecsysError


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, index=False)


def _fails(raw: Path, out: Path, error: type[RecsysError] = DataError, **overrides: object) -> RecsysError:
    with pytest.raises(error) as info:
        build_dataset(make_cfg(raw, out, **overrides))
    assert not out.exists(), "no partial output"
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "no temp directory left"
    return info.value


def test_missing_file(raw_dir: Path, tmp_path: Path) -> None:
    (raw_dir / "users.csv").unlink()
    err = _fails(raw_dir, tmp_path / "o")
    assert err.file and err.file.endswith("users.csv") and "not found" in str(err)


def test_wrong_delimiter(raw_dir: Path, tmp_path: Path) -> None:
    df = pd.read_csv(raw_dir / "items.csv", dtype=str)
    df.to_csv(raw_dir / "items.csv", index=False, sep=";")
    err = _fails(raw_dir, tmp_path / "o")
    assert "';'-delimited" in str(err) and err.file and err.file.endswith("items.csv")


def test_wrong_encoding(raw_dir: Path, tmp_path: Path) -> None:
    text = (raw_dir / "users.csv").read_text().replace("person1@", "persön1@")
    (raw_dir / "users.csv").write_bytes(text.encode("utf-16"))
    err = _fails(raw_dir, tmp_path / "o")
    assert "cannot decode as utf-8" in str(err)


def test_missing_required_column(raw_dir: Path, tmp_path: Path) -> None:
    df = pd.read_csv(raw_dir / "interactions.csv", dtype=str).drop(columns=["day"])
    df.to_csv(raw_dir / "interactions.csv", index=False)
    err = _fails(raw_dir, tmp_path / "o")
    assert err.column == "day" and "missing required column" in str(err)


def test_non_numeric_price(raw_dir: Path, tmp_path: Path) -> None:
    _edit_csv(raw_dir / "interactions.csv", 6, "amount", "twelve")
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (7, "price") and "'twelve'" in str(err)


def test_unparseable_date(raw_dir: Path, tmp_path: Path) -> None:
    _edit_csv(raw_dir / "interactions.csv", 9, "day", "31/02/2024")
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (10, "timestamp") and "unparseable date" in str(err)


def test_duplicate_rows_merged_or_refused(raw_dir: Path, tmp_path: Path) -> None:
    df = pd.read_csv(raw_dir / "interactions.csv", dtype=str)
    pd.concat([df, df.iloc[[0, 1]]]).to_csv(raw_dir / "interactions.csv", index=False)
    out = build_dataset(make_cfg(raw_dir, tmp_path / "ok"))
    report = json.loads((out / "quality_report.json").read_text())
    assert report["dropped"]["interactions"]["duplicate row merged into quantity"] >= 2
    err = _fails(raw_dir, tmp_path / "o", **{"preprocess.dedup.interactions": "error"})
    assert err.row == 401 and "duplicate row" in str(err)


def test_duplicate_user_key(raw_dir: Path, tmp_path: Path) -> None:
    _edit_csv(raw_dir / "users.csv", 4, "cust", "c000")
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (5, "user_id")


@pytest.mark.parametrize(("file", "col", "value", "canonical"), [
    ("interactions.csv", "amount", "-3", "price"),
    ("interactions.csv", "amount", "99999999", "price"),
    ("users.csv", "age", "240", "age"),
    ("users.csv", "age", "-1", "age"),
])
def test_negative_or_absurd_values(raw_dir: Path, tmp_path: Path, file: str, col: str, value: str,
                                   canonical: str) -> None:
    _edit_csv(raw_dir / file, 2, col, value)
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (3, canonical) and "outside" in str(err)


def test_quarantine_counts_rows(raw_dir: Path, tmp_path: Path) -> None:
    _edit_csv(raw_dir / "interactions.csv", 2, "amount", "-3")
    _edit_csv(raw_dir / "interactions.csv", 3, "cust", "ghost")
    out = build_dataset(make_cfg(raw_dir, tmp_path / "q", **{"preprocess.on_invalid": "quarantine",
                                                           "preprocess.on_unknown_ids": "quarantine"}))
    report = json.loads((out / "quality_report.json").read_text())
    assert report["dropped"]["interactions"]["price outside [0.0, 1000000.0]"] == 1
    assert report["dropped"]["interactions"]["user_id not found in the users table"] == 1
    q = pd.read_parquet(out / "quarantine" / "interactions.parquet")
    assert sorted(q["_row"]) == [3, 4] and set(q["_column"]) == {"price", "user_id"}
    assert "ghost" not in set(q["user_id"].astype(str)), "quarantined customer ids are pseudonymised too"


@pytest.mark.parametrize(("col", "value", "canonical"), [("cust", "ghost", "user_id"), ("sku", "99999", "item_id")])
def test_unknown_ids(raw_dir: Path, tmp_path: Path, col: str, value: str, canonical: str) -> None:
    _edit_csv(raw_dir / "interactions.csv", 11, col, value)
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (12, canonical) and "not found" in str(err)
    assert repr(value) in str(err), "the id as it is in the file, not its pseudonym"


def test_empty_table(raw_dir: Path, tmp_path: Path) -> None:
    (raw_dir / "items.csv").write_text("sku,cat,tags,list_price,img\n")
    err = _fails(raw_dir, tmp_path / "o")
    assert "empty" in str(err) and err.file and err.file.endswith("items.csv")


def test_zero_byte_file(raw_dir: Path, tmp_path: Path) -> None:
    (raw_dir / "users.csv").write_bytes(b"")
    assert "empty" in str(_fails(raw_dir, tmp_path / "o"))


@pytest.mark.parametrize(("value", "reason"), [("images/nothere.png", "not found"),
                                               ("../../etc/passwd", "outside the data root")])
def test_bad_image_path(raw_dir: Path, tmp_path: Path, value: str, reason: str) -> None:
    _edit_csv(raw_dir / "items.csv", 1, "img", value)
    err = _fails(raw_dir, tmp_path / "o")
    assert (err.row, err.column) == (2, "image_path") and reason in str(err)
    out = build_dataset(make_cfg(raw_dir, tmp_path / "q", **{"preprocess.on_bad_image_path": "quarantine"}))
    items = pd.read_parquet(out / "items.parquet")
    assert items["image_path"].isna().sum() == 1 and len(items) == 20


def test_corrupted_parquet(raw_dir: Path, tmp_path: Path) -> None:
    pd.read_csv(raw_dir / "items.csv", dtype=str).to_parquet(raw_dir / "items.parquet")
    data = (raw_dir / "items.parquet").read_bytes()
    (raw_dir / "items.parquet").write_bytes(data[: len(data) // 2])
    err = _fails(raw_dir, tmp_path / "o", **{"data.tables.items.path": "items.parquet"})
    assert "not a readable Parquet file" in str(err)


def test_unknown_source(raw_dir: Path, tmp_path: Path) -> None:
    err = _fails(raw_dir, tmp_path / "o", ConfigError, **{"data.source": "kaggle"})
    assert "unknown source 'kaggle'" in str(err)


def test_mistyped_column(raw_dir: Path, tmp_path: Path) -> None:
    err = _fails(raw_dir, tmp_path / "o", ConfigError, **{"data.tables.items.columns": {"itemid": "sku"}})
    assert "unknown canonical column(s) ['itemid']" in str(err)
