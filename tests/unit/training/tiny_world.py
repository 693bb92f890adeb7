"""A tiny processed dataset (written per the data contract with pandas) with a learnable
signal: users and items fall into clusters, users buy mostly from their own cluster, and item
attributes, product-image features and social-image features reveal the cluster. The last
items are released only after the training period (cold items)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

FEATURE_DIM = 16


def _vocab(values: list[str]) -> list[str]:
    return ["<unk>", *sorted(set(values))]


def write_dataset(root: Path, n_users: int = 80, n_items: int = 48, k: int = 4,
                  seed: int = 0, with_images: bool = True, empty_train: bool = False,
                  timestamps: bool = True) -> Path:
    """Write the dataset to ``root/data`` (+ features to ``root/features``); return data dir.
    ``timestamps=False``: interactions without timestamps (manifest ``has_timestamps: false``)."""
    rng = np.random.default_rng(seed)
    data, img_root = root / "data", root / "images"
    data.mkdir(parents=True)
    n_cold = n_items // 6
    ucl, icl = np.arange(n_users) % k, np.arange(n_items) % k
    release = np.where(np.arange(n_items) >= n_items - n_cold, 50, 0)
    rows = []
    for u in range(n_users):
        for _ in range(rng.integers(8, 14)):
            day = int(rng.integers(0, 60))
            own = rng.random() < 0.85
            pool = np.flatnonzero(((icl == ucl[u]) if own else (icl != ucl[u])) & (release <= day))
            rows.append((u, int(rng.choice(pool)), day, "purchase", True))
            rows.append((u, int(rng.integers(n_items)), day, "view", False))
    inter = pd.DataFrame(rows, columns=["user_idx", "item_idx", "day", "event", "positive"])
    inter["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(inter["day"], unit="D")
    inter["user_id"] = [f"u{u:04d}" for u in inter["user_idx"]]
    inter["item_id"] = [f"i{i:04d}" for i in inter["item_idx"]]
    inter["quantity"] = np.int64(1)
    inter["price"] = 10.0 + inter["item_idx"].astype(float)
    inter["channel"] = "web"
    cols = ["user_idx", "item_idx", "user_id", "item_id", "timestamp", "event", "quantity",
            "price", "channel", "positive"]
    splits = {"train": inter[inter["day"] < 50], "val": inter[inter["day"].between(50, 54)],
              "test": inter[inter["day"] >= 55]}
    if empty_train:
        splits["train"] = splits["train"].assign(positive=False)
    for name, df in splits.items():
        if not timestamps:
            df = df.assign(timestamp=pd.NaT)
        df[cols].reset_index(drop=True).to_parquet(data / f"{name}.parquet")

    genders = [["F", "M"][u % 2] for u in range(n_users)]
    regions = [f"r{c}" for c in ucl]
    age = rng.normal(35, 10, n_users)
    users = pd.DataFrame({
        "user_idx": np.arange(n_users), "user_id": [f"u{u:04d}" for u in range(n_users)],
        "age": age, "gender": genders, "region": regions, "occupation": None,
        "income_band": None, "marketing_consent": True,
        "social_image_consent": rng.random(n_users) < 0.7, "preferred_channel": "email",
    })
    vocabs = {"users.gender": _vocab(genders), "users.region": _vocab(regions)}
    users["gender_idx"] = [vocabs["users.gender"].index(g) for g in genders]
    users["region_idx"] = [vocabs["users.region"].index(r) for r in regions]
    users["age_z"] = ((age - age.mean()) / age.std()).astype(np.float32)
    users["age_mm"] = ((age - age.min()) / (age.max() - age.min())).astype(np.float32)
    users.to_parquet(data / "users.parquet")

    cats = [f"c{c}" if rng.random() < 0.8 else f"c{rng.integers(k)}" for c in icl]
    colours = [f"col{rng.integers(3)}" for _ in range(n_items)]
    tags = [f"t{c}|tag{rng.integers(2)}" for c in icl]
    vocabs |= {"items.category": _vocab(cats), "items.colour": _vocab(colours),
               "items.tags": _vocab([t for s in tags for t in s.split("|")])}
    price = 10.0 + np.arange(n_items, dtype=float)
    first_seen = splits["train"].groupby("item_idx")["timestamp"].min()
    items = pd.DataFrame({
        "item_idx": np.arange(n_items), "item_id": [f"i{i:04d}" for i in range(n_items)],
        "category": cats, "colour": colours, "tags": tags, "price": price,
        "stock": np.int64(5), "image_path": [f"items/i{i:04d}.jpg" for i in range(n_items)],
    })
    items["category_idx"] = [vocabs["items.category"].index(c) for c in cats]
    items["colour_idx"] = [vocabs["items.colour"].index(c) for c in colours]
    items["tags_multi"] = [[vocabs["items.tags"].index(t) for t in s.split("|")] for s in tags]
    items["price_z"] = ((price - price.mean()) / price.std()).astype(np.float32)
    items["price_mm"] = ((price - price.min()) / (price.max() - price.min())).astype(np.float32)
    items["first_seen"] = items["item_idx"].map(first_seen)
    items.to_parquet(data / "items.parquet")

    n_imgs = rng.integers(0, 4, n_users)
    ui_user = np.repeat(np.arange(n_users), n_imgs)
    pd.DataFrame({
        "user_idx": ui_user, "user_id": [f"u{u:04d}" for u in ui_user],
        "image_path": [f"social/{j}.jpg" for j in range(len(ui_user))],
        "posted_at": pd.Timestamp("2024-01-01"),
    }).to_parquet(data / "user_images.parquet")

    features = {"users": {"categorical": ["gender", "region"], "multi_hot": [], "numeric": ["age"]},
                "items": {"categorical": ["category", "colour"], "multi_hot": ["tags"],
                          "numeric": ["price"]}}
    (data / "vocabs.json").write_text(json.dumps(vocabs))
    (data / "features.json").write_text(json.dumps(features))
    manifest = {
        "name": "tiny", "package_version": "0.1.0", "created_at": "2024-03-01T00:00:00",
        "config_hash": "c0ffee", "data_fingerprint": f"fp{seed:010d}ab",
        "image_root": str(img_root),
        "row_counts": {"users": n_users, "items": n_items, **{s: len(d) for s, d in splits.items()}},
        "schema": {}, "split": {"kind": "temporal"}, "has_timestamps": timestamps,
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    if with_images:
        centroids = rng.normal(size=(k, FEATURE_DIM)).astype(np.float32)
        _write_features(root / "features" / "tiny-fp" / "v1", centroids, icl, ucl[ui_user], rng,
                        n_users, n_imgs)
        (img_root / "items").mkdir(parents=True)
        palette = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40)]
        for i in range(n_items):
            Image.new("RGB", (24, 24), palette[icl[i] % 4]).save(img_root / f"items/i{i:04d}.jpg")
    return data


def _write_features(out: Path, centroids: np.ndarray, icl: np.ndarray, owner_cl: np.ndarray,
                    rng: np.random.Generator, n_users: int, n_imgs: np.ndarray) -> None:
    out.mkdir(parents=True)
    noise = 0.3
    item = centroids[icl] + noise * rng.normal(size=(len(icl), FEATURE_DIM))
    social = centroids[owner_cl] + noise * rng.normal(size=(len(owner_cl), FEATURE_DIM))
    offsets = np.concatenate([[0], np.cumsum(n_imgs)]).astype(np.int64)
    arrays = {
        "item_features": item.astype(np.float32), "item_mask": np.ones(len(icl), bool),
        "user_image_features": social.astype(np.float32),
        "user_image_user_idx": np.repeat(np.arange(n_users), n_imgs).astype(np.int64),
        "user_image_offsets": offsets, "user_image_rows": np.arange(len(owner_cl)),
    }
    for name, value in arrays.items():
        np.save(out / f"{name}.npy", value)
    (out / "report.json").write_text(json.dumps({"encoder": "efficientnet_lite0",
                                                 "dim": FEATURE_DIM}))
