"""A tiny processed dataset that follows the on-disk contract (50 users, 40 items, ~500 purchases).

Shared by the mining and rules tests (the rules conftest loads this module by path).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

N_USERS = 50
N_ITEMS = 40
START = pd.Timestamp("2024-01-01")
N_DAYS = 120
VAL_START = START + pd.Timedelta(days=96)
TEST_START = START + pd.Timedelta(days=108)
CATEGORIES = ["tops", "trousers", "shoes", "bags", "wine"]
BRANDS = ["acme", "bolt", "cora", "dune"]
COLOURS = ["black", "white", "red", "blue", "green"]
STYLES = ["casual", "sport", "classic"]
CHANNELS = ["app_push", "email", "sms", "social_ads"]


def _users(rng: np.random.Generator) -> pd.DataFrame:
    age = rng.integers(15, 70, N_USERS).astype(float)
    age[[3, 17]] = np.nan
    age[[4, 5]] = [16.0, 17.0]  # two minors
    users = pd.DataFrame(
        {
            "user_idx": np.arange(N_USERS, dtype=np.int64),
            "user_id": [f"u{i:03d}" for i in range(N_USERS)],
            "age": age,
            "gender": rng.choice(["F", "M"], N_USERS),
            "region": rng.choice(["north", "south", "east"], N_USERS),
            "occupation": rng.choice(["student", "professional", "retired"], N_USERS),
            "income_band": rng.choice(["low", "mid", "high"], N_USERS),
            "marketing_consent": rng.random(N_USERS) < 0.8,
            "social_image_consent": rng.random(N_USERS) < 0.5,
            "preferred_channel": rng.choice(CHANNELS, N_USERS),
        }
    )
    users.loc[0, "marketing_consent"] = False
    users.loc[1, "marketing_consent"] = True
    users.loc[1, "social_image_consent"] = False
    users.loc[2, ["marketing_consent", "social_image_consent"]] = True
    for col in ("gender", "region", "occupation", "income_band"):
        vocab = ["<unk>", *sorted(users[col].dropna().unique())]
        users[f"{col}_idx"] = users[col].map({v: i for i, v in enumerate(vocab)}).astype("int64")
    mean, std = np.nanmean(age), np.nanstd(age)
    users["age_z"] = ((users["age"].fillna(mean) - mean) / std).astype("float32")
    lo, hi = np.nanmin(age), np.nanmax(age)
    users["age_mm"] = ((users["age"].fillna(mean) - lo) / (hi - lo)).astype("float32")
    return users


def _items(rng: np.random.Generator) -> pd.DataFrame:
    category = [CATEGORIES[i % 4] for i in range(N_ITEMS)]
    category[38] = category[39] = "wine"
    price = np.round(rng.uniform(5.0, 100.0, N_ITEMS), 2)
    stock = rng.integers(1, 60, N_ITEMS).astype(np.int64)
    stock[[7, 21]] = 0
    items = pd.DataFrame(
        {
            "item_idx": np.arange(N_ITEMS, dtype=np.int64),
            "item_id": [f"i{i:03d}" for i in range(N_ITEMS)],
            "category": category,
            "brand": [BRANDS[i % 4] for i in range(N_ITEMS)],
            "colour": [COLOURS[i % 5] for i in range(N_ITEMS)],
            "style": ["|".join(sorted(set(rng.choice(STYLES, 2)))) for _ in range(N_ITEMS)],
            "price": price,
            "cost": np.round(price * 0.6, 2),
            "stock": stock,
            "age_restricted": [c == "wine" for c in category],
            "image_path": [f"images/i{i:03d}.jpg" for i in range(N_ITEMS)],
        }
    )
    items.loc[5, "image_path"] = None
    for col in ("category", "brand", "colour"):
        vocab = ["<unk>", *sorted(items[col].unique())]
        items[f"{col}_idx"] = items[col].map({v: i for i, v in enumerate(vocab)}).astype("int64")
    style_vocab = ["<unk>", *STYLES]
    items["style_multi"] = [
        [style_vocab.index(s) for s in v.split("|")] for v in items["style"]
    ]
    for col in ("price", "stock"):
        v = items[col].astype(float)
        items[f"{col}_z"] = ((v - v.mean()) / v.std(ddof=0)).astype("float32")
        items[f"{col}_mm"] = ((v - v.min()) / (v.max() - v.min())).astype("float32")
    return items


def _interactions(rng: np.random.Generator, items: pd.DataFrame) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for u in range(N_USERS):
        if u in (45, 46, 47):  # prospects: views only
            kinds, last_day = ["view"], N_DAYS
        elif u in (48, 49):  # no interactions at all
            continue
        else:
            kinds, last_day = ["purchase"], (60 if u % 3 == 0 else N_DAYS)  # every third churns
        n_sessions = int(rng.integers(3, 9))
        fav = int(rng.integers(0, 4))
        hour = int(rng.choice([8, 12, 19, 21]))
        for _ in range(n_sessions):
            day = int(rng.integers(0, last_day))
            ts = START + pd.Timedelta(days=day, hours=hour, minutes=int(rng.integers(0, 59)))
            basket = {int(rng.integers(0, N_ITEMS)) for _ in range(int(rng.integers(1, 3)))}
            basket.add(int(fav + 4 * rng.integers(0, 8)) % 38)
            if 10 in basket or rng.random() < 0.25:
                basket.update({10, 11})  # a strong co-purchase pair
            if u in (4, 5):
                basket = {b for b in basket if items.loc[b, "category"] != "wine"}
            for item in sorted(basket):
                kind = kinds[0]
                for event in ("view", kind) if kind == "purchase" else (kind,):
                    rows.append(
                        {
                            "user_idx": u,
                            "item_idx": item,
                            "timestamp": ts,
                            "event": event,
                            "quantity": 1,
                            "price": float(items.loc[item, "price"]),
                            "channel": "web" if u % 2 else "app",
                        }
                    )
    df = pd.DataFrame(rows)
    df["user_idx"] = df["user_idx"].astype("int64")
    df["item_idx"] = df["item_idx"].astype("int64")
    df["quantity"] = df["quantity"].astype("int64")
    df["timestamp"] = df["timestamp"].astype("datetime64[ns]")
    df["user_id"] = [f"u{u:03d}" for u in df["user_idx"]]
    df["item_id"] = [f"i{i:03d}" for i in df["item_idx"]]
    df["positive"] = df["event"] == "purchase"
    cols = ["user_idx", "item_idx", "user_id", "item_id", "timestamp", "event", "quantity",
            "price", "channel", "positive"]
    return df[cols].sort_values(["timestamp", "user_idx", "item_idx"]).reset_index(drop=True)


def build_tiny_dataset(root: Path, seed: int = 7) -> Path:
    """Write the tiny processed dataset under ``root`` and return its directory."""
    rng = np.random.default_rng(seed)
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    users, items = _users(rng), _items(rng)
    inter = _interactions(rng, items)
    first_seen = inter.groupby("item_idx")["timestamp"].min()
    items["first_seen"] = items["item_idx"].map(first_seen).astype("datetime64[ns]")
    splits = {
        "train": inter[inter["timestamp"] < VAL_START],
        "val": inter[(inter["timestamp"] >= VAL_START) & (inter["timestamp"] < TEST_START)],
        "test": inter[inter["timestamp"] >= TEST_START],
    }
    for name, frame in splits.items():
        frame.reset_index(drop=True).to_parquet(out / f"{name}.parquet", index=False)
    users.to_parquet(out / "users.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    user_images = pd.DataFrame(
        {
            "user_idx": np.array([1, 2, 3], dtype=np.int64),
            "user_id": ["u001", "u002", "u003"],
            "image_path": ["social/u001_0.jpg", "social/u002_0.jpg", "social/u003_0.jpg"],
            "posted_at": pd.to_datetime(["2024-01-05", "2024-02-01", "2024-03-01"]),
        }
    )
    user_images.to_parquet(out / "user_images.parquet", index=False)
    vocabs = {
        col: ["<unk>", *sorted(users[col].dropna().unique())]
        for col in ("gender", "region", "occupation", "income_band")
    }
    vocabs.update({col: ["<unk>", *sorted(items[col].unique())] for col in ("category", "brand", "colour")})
    vocabs["style"] = ["<unk>", *STYLES]
    features = {
        "users": {"categorical": ["gender", "region", "occupation", "income_band"],
                  "multi_hot": [], "numeric": ["age"]},
        "items": {"categorical": ["category", "brand", "colour"], "multi_hot": ["style"],
                  "numeric": ["price", "stock"]},
    }
    manifest = {
        "name": "tiny",
        "package_version": "0.1.0",
        "created_at": "2024-05-01T00:00:00",
        "config_hash": "test",
        "data_fingerprint": "test",
        "image_root": str(out.resolve()),
        "row_counts": {"users": N_USERS, "items": N_ITEMS, "user_images": 3,
                       **{k: len(v) for k, v in splits.items()}},
        "schema": {},
        "split": {"kind": "temporal", "val_start": str(VAL_START), "test_start": str(TEST_START)},
    }
    (out / "vocabs.json").write_text(json.dumps(vocabs))
    (out / "features.json").write_text(json.dumps(features))
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


CONF_DIR = Path(__file__).resolve().parents[3] / "recsys" / "conf"


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra (as the apps do), without running it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides or [])
    finally:
        GlobalHydra.instance().clear()
