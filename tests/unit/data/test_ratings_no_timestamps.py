"""Interactions without timestamps and explicit ratings: ingestion, the manifest contract, and
every bad input (time-based split, non-numeric or missing rating, threshold without ratings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datafixtures import make_cfg
from ratingfixtures import ratings_cfg, write_ratings

from recsys.data import load_dataset
from recsys.data.canonical import load_canonical
from recsys.data.pipeline import build_dataset
from recsys.data.quality import QualityReport
from recsys.data.source_config import parse_source_config
from recsys.errors import ConfigError, DataError, RecsysError


def _fails(cfg: object, out: Path, error: type[RecsysError]) -> RecsysError:
    with pytest.raises(error) as info:
        build_dataset(cfg)  # type: ignore[arg-type]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.tmp-*")), "nothing written"
    assert "\n" not in str(info.value)
    return info.value


def test_ingests_without_timestamps_in_file_order(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    ratings = pd.read_csv(root / "ratings.csv", dtype=str)
    source = parse_source_config(ratings_cfg(root, tmp_path / "o").data)
    inter = load_canonical(source.tables["interactions"], QualityReport())
    assert str(inter["timestamp"].dtype) == "datetime64[ns]" and inter["timestamp"].isna().all()
    assert inter["user_id"].astype(str).tolist() == ratings["user"].tolist()  # file order, original ids
    assert inter["item_id"].astype(str).tolist() == ratings["movie"].tolist()  # leading zeros kept
    stars = ratings["stars"].astype(int).to_numpy()
    assert (inter["event"].astype(str).to_numpy() == np.where(stars >= 3, "purchase", "view")).all()

    cfg = ratings_cfg(root, tmp_path / "o", **{"preprocess.privacy.pseudonymise": False})
    ds = load_dataset(build_dataset(cfg))
    assert ds.manifest["has_timestamps"] is False
    rows = pd.concat([ds.train, ds.val, ds.test])
    assert rows["timestamp"].isna().all() and len(rows) == len(ratings)
    # inside each split, rows keep the file's order (there is no timestamp to sort by)
    line = {pair: i for i, pair in enumerate(zip(ratings["user"], ratings["movie"], strict=True))}
    for split in (ds.train, ds.val, ds.test):
        pairs = zip(split["user_id"].astype(str), split["item_id"].astype(str), strict=True)
        assert (np.diff([line[p] for p in pairs]) > 0).all()


def test_timed_data_records_has_timestamps(raw_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(build_dataset(make_cfg(raw_dir, tmp_path / "o")))
    assert ds.manifest["has_timestamps"] is True


@pytest.mark.parametrize("split", ["temporal", "leave_last_basket", "leave_last_day"])
def test_time_based_split_without_timestamps_is_refused(tmp_path: Path, split: str) -> None:
    root = write_ratings(tmp_path / "raw")
    out = tmp_path / "o"
    err = _fails(ratings_cfg(root, out, split=split), out, ConfigError)
    assert "split.kind=" in str(err) and "needs timestamps" in str(err)
    assert err.file is not None and err.file.endswith("ratings.csv")


def test_non_numeric_rating_names_file_row_column_and_value(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    df = pd.read_csv(root / "ratings.csv", dtype=str)
    df.loc[11, "stars"] = "four"
    df.to_csv(root / "ratings.csv", index=False)
    out = tmp_path / "o"
    err = _fails(ratings_cfg(root, out), out, DataError)
    assert (err.row, err.column) == (12, "stars") and err.file and err.file.endswith("ratings.csv")
    assert "rating is not a number" in str(err) and "'four'" in str(err)


def test_missing_rating_is_refused(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    df = pd.read_csv(root / "ratings.csv", dtype=str)
    df.loc[4, "stars"] = ""
    df.to_csv(root / "ratings.csv", index=False)
    err = _fails(ratings_cfg(root, tmp_path / "o"), tmp_path / "o", DataError)
    assert (err.row, err.column) == (5, "stars") and "missing rating" in str(err)


def test_bad_rating_quarantined_when_configured(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    df = pd.read_csv(root / "ratings.csv", dtype=str)
    df.loc[[3, 7], "stars"] = "n/a stars"
    df.to_csv(root / "ratings.csv", index=False)
    ds = load_dataset(build_dataset(ratings_cfg(root, tmp_path / "o", **{"preprocess.on_invalid": "quarantine"})))
    report = json.loads((ds.path / "quality_report.json").read_text())
    assert report["dropped"]["interactions"]["rating is not a number"] == 2
    assert len(ds.train) + len(ds.val) + len(ds.test) == len(df) - 2


def test_rating_threshold_without_rating_column_names_the_key(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    pd.read_csv(root / "ratings.csv", dtype=str).drop(columns=["stars"]).to_csv(root / "ratings.csv", index=False)
    out = tmp_path / "o"
    err = _fails(ratings_cfg(root, out), out, ConfigError)
    assert "data.tables.interactions.rating" in str(err) and "'stars'" in str(err)
    assert err.file and err.file.endswith("ratings.csv")


@pytest.mark.parametrize(("rating", "needle"), [
    ({"threshold": 3}, "rating.column"),
    ({"column": "stars", "threshold": "high"}, "rating.threshold"),
    ({"column": "stars", "threshold": 3, "below": "keep"}, "rating.below"),
])
def test_bad_rating_config_names_the_key(tmp_path: Path, rating: dict[str, object], needle: str) -> None:
    root = write_ratings(tmp_path / "raw")
    cfg = ratings_cfg(root, tmp_path / "o", **{"data.tables.interactions.rating": rating})
    err = _fails(cfg, tmp_path / "o", ConfigError)
    assert needle in str(err)


def test_below_threshold_drop_or_view(tmp_path: Path) -> None:
    root = write_ratings(tmp_path / "raw")
    stars = pd.read_csv(root / "ratings.csv")["stars"]
    kept = load_dataset(build_dataset(ratings_cfg(root, tmp_path / "view")))
    rows = pd.concat([kept.train, kept.val, kept.test])
    assert len(rows) == len(stars) and int((~rows["positive"]).sum()) == int((stars < 3).sum())
    cfg = ratings_cfg(root, tmp_path / "drop", **{"data.tables.interactions.rating.below": "drop"})
    dropped = load_dataset(build_dataset(cfg))
    rows = pd.concat([dropped.train, dropped.val, dropped.test])
    assert len(rows) == int((stars >= 3).sum()) and rows["positive"].all()


def test_bad_number_after_the_first_block_names_its_row(raw_dir: Path, tmp_path: Path) -> None:
    """Arrow infers column types from the first block; a later word in a number column is still
    reported with its row."""
    df = pd.read_csv(raw_dir / "interactions.csv", dtype=str)
    big = pd.concat([df] * 120, ignore_index=True)  # > 1 MiB, so several blocks
    big.loc[len(big) - 5, "amount"] = "twelve"
    big.to_csv(raw_dir / "interactions.csv", index=False)
    assert (raw_dir / "interactions.csv").stat().st_size > 1 << 20
    out = tmp_path / "o"
    err = _fails(make_cfg(raw_dir, out), out, DataError)
    assert (err.row, err.column) == (len(big) - 4, "price") and "'twelve'" in str(err)
