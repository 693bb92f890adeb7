"""`recsys-data data=ml1m` as a process on an ML-1M-shaped folder: the RecBole protocol with no
extra flag, and one line with exit code 2 for a time-based split or a bad rating."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datafixtures import run_data_cli as _run


@pytest.fixture()
def fake_ml1m(tmp_path: Path) -> Path:
    """12 users who rated all 12 movies 3-5 stars, one 1-star rating, posters for half the movies."""
    root = tmp_path / "ml1m"
    (root / "posters").mkdir(parents=True)
    rng = np.random.default_rng(0)
    users, items = np.meshgrid(np.arange(1, 13), np.arange(1, 13), indexing="ij")
    ratings = pd.DataFrame({"user_id": users.ravel(), "item_id": items.ravel(),
                            "rating": rng.integers(3, 6, users.size)})
    ratings = pd.concat([ratings, pd.DataFrame({"user_id": [1], "item_id": [13], "rating": [1]})])
    ratings.to_csv(root / "ratings.csv", index=False)
    pd.DataFrame({"user_id": range(1, 13), "gender": ["F", "M"] * 6, "age": [1, 18, 25, 35, 45, 56] * 2,
                  "occupation": range(12), "zip_code": ["02460"] * 12}).to_csv(root / "users.csv", index=False)
    posters = [f"posters/{i}.jpg" if i % 2 else "" for i in range(1, 14)]
    for p in filter(None, posters):
        (root / p).write_bytes(b"\xff\xd8")
    pd.DataFrame({"item_id": range(1, 14), "title": [f"Movie {i}" for i in range(1, 14)], "year": 1990,
                  "genres": ["Drama|Comedy", "Drama"] * 6 + ["Horror"], "poster": posters}).to_csv(
        root / "movies.csv", index=False)
    return root


def test_cli_ml1m_protocol_by_default(fake_ml1m: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _run("data=ml1m", f"paths.ml1m_dir={fake_ml1m}", f"paths.output_dir={out}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "data" / "ml1m" / "manifest.json").read_text())
    assert manifest["has_timestamps"] is False and manifest["split"]["kind"] == "per_user_random"
    # the 1-star rating is dropped and movie 13 (no other rating) falls to the 10-core filter
    assert manifest["row_counts"]["items"] == 12 and manifest["row_counts"]["users"] == 12
    assert sum(manifest["row_counts"][s] for s in ("train", "val", "test")) == 144


def test_cli_time_split_without_timestamps_exits_2(fake_ml1m: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _run("data=ml1m", "split=leave_last_day", f"paths.ml1m_dir={fake_ml1m}", f"paths.output_dir={out}",
               cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert "ratings.csv" in line and "split.kind=" in line and "needs timestamps" in line
    assert "Traceback" not in res.stderr and not (out / "data" / "ml1m").exists()


def test_cli_non_numeric_rating_exits_2(fake_ml1m: Path, tmp_path: Path) -> None:
    df = pd.read_csv(fake_ml1m / "ratings.csv", dtype=str)
    df.loc[20, "rating"] = "4 stars"
    df.to_csv(fake_ml1m / "ratings.csv", index=False)
    out = tmp_path / "out"
    res = _run("data=ml1m", f"paths.ml1m_dir={fake_ml1m}", f"paths.output_dir={out}", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert "ratings.csv, row 21, column 'rating'" in line and "'4 stars'" in line
    assert "Traceback" not in res.stderr and not (out / "data" / "ml1m").exists()
