"""A tiny processed dataset that follows the on-disk contract, for tests and benchmarks.

Users prefer one category and mostly buy from it, sometimes re-buying; a few items appear only
in the held-out splits (cold items) and a few users have no training history (cold users).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.fit import first_seen
from recsys.data.fitted import FittedParams, NumericParams, PriceImputer, TableParams
from recsys.data.fitted_io import save_fitted
from recsys.data.schema import UNK
from recsys.data.transform import fit_scaler

CATEGORIES = ("tops", "trousers", "dresses", "shoes", "bags")
COLOURS = ("black", "white", "red", "blue")
REGIONS = ("north", "south", "east")
GENDERS = ("f", "m")


@dataclass
class ToyDataset:
    """Same attributes as the processed dataset loaded from disk."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    user_images: pd.DataFrame
    vocabs: dict[str, list[str]]
    features: dict[str, dict[str, list[str]]]
    manifest: dict[str, Any]
    fitted: FittedParams
    image_root: Path = field(default_factory=lambda: Path("."))
    path: Path = field(default_factory=lambda: Path("toy"))

    def write(self, path: Path) -> Path:
        """Write the contract's files into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name in ("train", "val", "test", "users", "items", "user_images"):
            getattr(self, name).to_parquet(path / f"{name}.parquet", index=False)
        save_fitted(path, self.fitted)
        (path / "features.json").write_text(json.dumps(self.features))
        (path / "manifest.json").write_text(json.dumps(self.manifest))
        self.path = path
        return path


def _users(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    age = rng.integers(18, 70, n).astype(np.float64)
    age[rng.random(n) < 0.1] = np.nan
    users = pd.DataFrame({
        "user_idx": np.arange(n, dtype=np.int64),
        "user_id": [f"u{i:04d}" for i in range(n)],
        "age": age,
        "gender": rng.choice(GENDERS, n),
        "region": rng.choice(REGIONS, n),
        "marketing_consent": rng.random(n) < 0.8,
        "social_image_consent": rng.random(n) < 0.5,
        "preferred_channel": rng.choice(["email", "sms"], n),
    })
    vocabs = {"users.gender": [UNK, *GENDERS], "users.region": [UNK, *REGIONS]}
    return users, vocabs


def _items(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    cat = np.array([CATEGORIES[i % len(CATEGORIES)] for i in range(n)])
    price = np.round(rng.uniform(5, 100, n), 2)
    items = pd.DataFrame({
        "item_idx": np.arange(n, dtype=np.int64),
        "item_id": [f"{1000000000 + i:010d}" for i in range(n)],
        "category": cat,
        "colour": rng.choice(COLOURS, n),
        "price": price,
        "stock": rng.integers(0, 50, n).astype(np.int64),
        "image_path": [None] * n,
    })
    vocabs = {"items.category": [UNK, *CATEGORIES], "items.colour": [UNK, *COLOURS]}
    return items, vocabs


def _fit(train: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
         vocabs: dict[str, list[str]]) -> FittedParams:
    """Scalers fitted on the training entities (missing ages stay unfilled and encode as 0)."""
    def table(name: str, key: str, col: str, frame: pd.DataFrame) -> TableParams:
        seen = frame[frame[key].isin(train[key])][col].to_numpy(np.float64)
        cats = {k.split(".", 1)[1]: v for k, v in vocabs.items() if k.startswith(f"{name}.")}
        return TableParams(cats, numeric=NumericParams(scalers={col: fit_scaler(seen, False)}))

    paid = train.groupby("item_id")["price"].median()
    return FittedParams(
        {"interactions": TableParams(), "users": table("users", "user_id", "age", users),
         "items": table("items", "item_id", "price", items)},
        PriceImputer(paid.index.to_numpy(str), paid.to_numpy(np.float64),
                     float(train["price"].median())),
        {"split": "train", "rows": len(train)})


def _interactions(
    rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame, n_cold_items: int,
    n_cold_users: int,
) -> pd.DataFrame:
    n_users, n_items = len(users), len(items)
    cold_items = np.arange(n_items - n_cold_items, n_items)
    warm = np.arange(n_items - n_cold_items)
    start = pd.Timestamp("2024-01-01")
    rows: list[tuple[int, int, pd.Timestamp, str]] = []
    for u in range(n_users):
        cat = u % len(CATEGORIES)
        liked = warm[warm % len(CATEGORIES) == cat]
        favourite = rng.choice(liked, 2, replace=False)
        history = [int(d) for d in sorted(rng.choice(28, 5, replace=False))]
        days = [29] if u >= n_users - n_cold_users else [*history, 28, 29]
        for day in days:
            ts = start + pd.Timedelta(days=int(day), hours=int(rng.integers(8, 20)))
            for _ in range(int(rng.integers(1, 4))):
                r = rng.random()
                pool = favourite if r < 0.3 else (liked if r < 0.85 else warm)
                if day == 29 and rng.random() < 0.3:
                    pool = cold_items[cold_items % len(CATEGORIES) == cat] if n_cold_items else pool
                rows.append((u, int(rng.choice(pool)), ts, "purchase"))
            rows.append((u, int(rng.choice(warm)), ts, "view"))
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp", "event"])
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    frame = frame.assign(
        user_id=users["user_id"].to_numpy()[frame["user_idx"]],
        item_id=items["item_id"].to_numpy()[frame["item_idx"]],
        quantity=np.ones(len(frame), dtype=np.int64),
        price=items["price"].to_numpy()[frame["item_idx"]].astype(np.float64),
        channel=rng.choice(["online", "store"], len(frame)),
        positive=(frame["event"] == "purchase").to_numpy(),
    )
    return frame[["user_idx", "item_idx", "user_id", "item_id", "timestamp", "event", "quantity",
                  "price", "channel", "positive"]]


def make_toy_dataset(
    n_users: int = 60, n_items: int = 80, n_cold_items: int = 6, n_cold_users: int = 4,
    seed: int = 0,
) -> ToyDataset:
    """Build the toy dataset in memory (call :meth:`ToyDataset.write` to put it on disk)."""
    rng = np.random.default_rng(seed)
    users, uv = _users(rng, n_users)
    items, iv = _items(rng, n_items)
    inter = _interactions(rng, users, items, n_cold_items, n_cold_users)
    day = inter["timestamp"].dt.normalize()
    split = np.where(day >= pd.Timestamp("2024-01-30"), "test",
                     np.where(day >= pd.Timestamp("2024-01-29"), "val", "train"))
    frames = {s: inter[split == s].reset_index(drop=True) for s in ("train", "val", "test")}
    fitted = _fit(frames["train"], users, items, {**uv, **iv})
    users = fitted.tables["users"].encode(users)
    items = fitted.tables["items"].encode(items).assign(first_seen=first_seen(items, frames["train"]))
    user_images = pd.DataFrame({
        "user_idx": pd.Series([], dtype=np.int64), "user_id": pd.Series([], dtype=str),
        "image_path": pd.Series([], dtype=str),
        "posted_at": pd.Series([], dtype="datetime64[ns]"),
    })
    features = {
        "users": {"categorical": ["gender", "region"], "multi_hot": [], "numeric": ["age"]},
        "items": {"categorical": ["category", "colour"], "multi_hot": [], "numeric": ["price"]},
    }
    manifest = {
        "name": "toy", "package_version": "0.1.0", "created_at": "2024-02-01T00:00:00",
        "config_hash": "toy", "data_fingerprint": f"toy-{seed}", "image_root": "/nonexistent",
        "row_counts": {k: len(v) for k, v in frames.items()}, "schema": {},
        "split": {"kind": "leave_last_basket"},
    }
    return ToyDataset(**frames, users=users, items=items, user_images=user_images,
                      vocabs={**uv, **iv}, features=features, manifest=manifest, fitted=fitted)
