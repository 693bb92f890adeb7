"""Helpers of the image tests: configs, tiny photos, a processed dataset following the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

CONF = str(Path(__file__).resolve().parents[3] / "recsys" / "conf")
# Small, fast settings: random-init MobileNetV3-small at 64 px, decoding inline.
FAST = [
    "image_encoder=mobilenet_v3_small",
    "image_encoder.image_size=64",
    "image_encoder.resize_size=72",
    "num_workers=0",
    "batch_size=4",
    "device=cpu",
    "torch_threads=1",
]


def compose_features(overrides: list[str]) -> DictConfig:
    """conf/features.yaml composed with ``overrides`` (Hydra compose API)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="features", overrides=overrides)


def write_photo(path: Path, seed: int, size: tuple[int, int] = (24, 36)) -> Path:
    """A small random-blob RGB JPEG (different seeds give different content)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, size=(1, 1, 3))
    noise = rng.integers(-40, 40, size=(h, w, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def build_dataset(tmp_path: Path, name: str = "tiny") -> Path:
    """A processed dataset dir (7 items, 4 users, 4 social images) with its own image root."""
    root = tmp_path / "media"
    for i in range(5):
        write_photo(root / "items" / f"i{i}.jpg", seed=100 + i)
    for j in range(4):
        write_photo(root / "social" / f"s{j}.jpg", seed=200 + j)
    (root / "items" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ds = tmp_path / "processed" / name
    ds.mkdir(parents=True)
    item_ids = [f"a{i}" for i in range(7)]
    image_paths = [*(f"items/i{i}.jpg" for i in range(5)), None, "items/broken.jpg"]
    items = pd.DataFrame(
        {
            "item_idx": np.arange(7, dtype=np.int64),
            "item_id": item_ids,
            "category": ["top", "top", "bag", "bag", "shoe", "shoe", "top"],
            "category_idx": np.array([1, 1, 2, 2, 3, 3, 1], dtype=np.int64),
            "price": np.linspace(5, 35, 7),
            "price_z": np.linspace(-1, 1, 7).astype(np.float32),
            "price_mm": np.linspace(0, 1, 7).astype(np.float32),
            "image_path": image_paths,
            "first_seen": pd.to_datetime(["2024-01-01"] * 6 + [None]),
        }
    )
    users = pd.DataFrame(
        {
            "user_idx": np.arange(4, dtype=np.int64),
            "user_id": [f"u{k}" for k in range(4)],
            "age": [25.0, 31.0, np.nan, 52.0],
            "gender": ["F", "M", None, "F"],
            "marketing_consent": [True, True, False, True],
            "social_image_consent": [True, False, True, True],
            "preferred_channel": ["email"] * 4,
            "gender_idx": np.array([1, 2, 0, 1], dtype=np.int64),
            "age_z": np.zeros(4, dtype=np.float32),
            "age_mm": np.zeros(4, dtype=np.float32),
        }
    )
    # user 3 owns two images, user 1 did not consent, user 2 posts nothing.
    user_images = pd.DataFrame(
        {
            "user_idx": np.array([3, 0, 1, 3], dtype=np.int64),
            "user_id": ["u3", "u0", "u1", "u3"],
            "image_path": ["social/s0.jpg", "social/s1.jpg", "social/s2.jpg", "social/s3.jpg"],
            "posted_at": pd.to_datetime(["2024-01-02"] * 4),
        }
    )
    inter = pd.DataFrame(
        {
            "user_idx": np.array([0, 1, 3], dtype=np.int64),
            "item_idx": np.array([0, 2, 4], dtype=np.int64),
            "user_id": ["u0", "u1", "u3"],
            "item_id": ["a0", "a2", "a4"],
            "timestamp": pd.to_datetime(["2024-01-03"] * 3),
            "event": ["purchase"] * 3,
            "quantity": np.ones(3, dtype=np.int64),
            "price": [5.0, 15.0, 25.0],
            "channel": ["online"] * 3,
            "positive": [True] * 3,
        }
    )
    for split in ("train", "val", "test"):
        inter.to_parquet(ds / f"{split}.parquet", index=False)
    users.to_parquet(ds / "users.parquet", index=False)
    items.to_parquet(ds / "items.parquet", index=False)
    user_images.to_parquet(ds / "user_images.parquet", index=False)
    (ds / "vocabs.json").write_text(json.dumps({"category": ["<unk>", "top", "bag", "shoe"]}))
    (ds / "features.json").write_text(
        json.dumps(
            {
                "users": {"categorical": ["gender"], "multi_hot": [], "numeric": ["age"]},
                "items": {"categorical": ["category"], "multi_hot": [], "numeric": ["price"]},
            }
        )
    )
    manifest = {
        "name": name,
        "package_version": "0.1.0",
        "created_at": "2024-01-04T00:00:00",
        "config_hash": "c0ffee",
        "data_fingerprint": "f00dfeed12345678",
        "image_root": str(root),
        "row_counts": {"users": 4, "items": 7, "train": 3, "val": 3, "test": 3},
        "schema": {},
        "split": {},
    }
    (ds / "manifest.json").write_text(json.dumps(manifest))
    return ds
