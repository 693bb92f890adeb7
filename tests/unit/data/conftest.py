"""A tiny generic (CSV) source and helpers to run the data stage on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture()
def raw_dir(tmp_path: Path) -> Path:
    """interactions.csv, users.csv, items.csv and images/ for 30 users and 20 items over 60 days."""
    root = tmp_path / "raw"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    users = pd.DataFrame({
        "cust": [f"c{i:03d}" for i in range(30)],
        "age": rng.integers(18, 70, 30).astype(float),
        "sex": rng.choice(["F", "M"], 30),
        "email": [f"person{i}@example.org" for i in range(30)],
        "newsletter": rng.choice(["yes", "no"], 30),
    })
    users.loc[3, "age"] = np.nan
    items = pd.DataFrame({
        "sku": [f"{i:05d}" for i in range(20)],
        "cat": rng.choice(["shirt", "shoe", "bag"], 20),
        "tags": rng.choice(["a|b", "b", "c|a", ""], 20),
        "list_price": rng.uniform(5, 50, 20).round(2),
        "img": [f"images/{i:05d}.png" for i in range(20)],
    })
    for path in items["img"]:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(root / path)
    n = 400
    start = pd.Timestamp("2024-01-01")
    inter = pd.DataFrame({
        "cust": rng.choice(users["cust"], n),
        "sku": rng.choice(items["sku"], n),
        "day": [(start + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d") for d in rng.integers(0, 60, n)],
        "amount": rng.uniform(5, 50, n).round(2),
        "ch": rng.choice([1, 2], n),
    })
    users.to_csv(root / "users.csv", index=False)
    items.to_csv(root / "items.csv", index=False)
    inter.to_csv(root / "interactions.csv", index=False)
    return root
