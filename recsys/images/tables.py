"""Read the image columns of a processed dataset directory (manifest + parquet contract)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys.errors import DataError


@dataclass(frozen=True)
class ImageTables:
    """Image paths of a processed dataset, relative to ``image_root``."""

    name: str
    image_root: Path | None
    n_items: int
    n_users: int
    item_paths: pd.Series  # index item_idx, str or None
    user_images: pd.DataFrame  # user_idx, image_path; row order of user_images.parquet
    user_consent: np.ndarray  # bool [n_users] social_image_consent


def read_image_tables(dataset_dir: Path) -> ImageTables:
    """Read manifest.json, items.parquet, users.parquet and (optional) user_images.parquet."""
    manifest = _manifest(dataset_dir)
    items = _parquet(dataset_dir / "items.parquet", ["item_idx", "image_path"])
    users = _parquet(dataset_dir / "users.parquet", ["user_idx", "social_image_consent"])
    _check_dense(items, "item_idx", dataset_dir / "items.parquet")
    _check_dense(users, "user_idx", dataset_dir / "users.parquet")
    items = items.sort_values("item_idx")
    users = users.sort_values("user_idx")
    ui_path = dataset_dir / "user_images.parquet"
    if ui_path.is_file():
        user_images = _parquet(ui_path, ["user_idx", "image_path"]).reset_index(drop=True)
    else:
        user_images = pd.DataFrame({"user_idx": np.zeros(0, np.int64), "image_path": []})
    blank = user_images["image_path"].astype(str).str.strip() == ""
    user_images.loc[blank, "image_path"] = None
    bad = ~user_images["user_idx"].between(0, len(users) - 1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"user_idx {user_images['user_idx'].iloc[row]} outside 0..{len(users) - 1}",
            file=str(ui_path),
            row=row,
            column="user_idx",
        )
    root = manifest.get("image_root")
    image_root = None if root in (None, "") else (dataset_dir / str(root)).resolve()
    has_paths = items["image_path"].notna().any() or len(user_images) > 0
    if has_paths and image_root is None:
        raise DataError(
            "no image_root", file=str(dataset_dir / "manifest.json"), column="image_root"
        )
    has_path = items["image_path"].notna() & (items["image_path"].astype(str).str.strip() != "")
    item_paths = items["image_path"].where(has_path, None)
    fingerprint = str(manifest.get("data_fingerprint") or "")[:12]
    return ImageTables(
        name=f"{manifest.get('name') or dataset_dir.name}-{fingerprint}".rstrip("-"),
        image_root=image_root,
        n_items=len(items),
        n_users=len(users),
        item_paths=pd.Series(item_paths.to_numpy(), index=items["item_idx"].to_numpy()),
        user_images=user_images,
        user_consent=users["social_image_consent"].fillna(False).astype(bool).to_numpy(),
    )


def _manifest(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "manifest.json"
    if not path.is_file():
        raise DataError("not a processed dataset: manifest.json not found", file=str(path))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable manifest: {err}", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise DataError("manifest is not a JSON object", file=str(path))
    return manifest


def _parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    try:
        names = set(pq.read_schema(path).names)
    except Exception as err:
        raise DataError(f"unreadable parquet: {err}", file=str(path)) from None
    for col in columns:
        if col not in names:
            raise DataError("missing column", file=str(path), column=col)
    return pd.read_parquet(path, columns=columns)


def _check_dense(df: pd.DataFrame, col: str, path: Path) -> None:
    values = np.sort(df[col].to_numpy())
    if not np.array_equal(values, np.arange(len(df))):
        raise DataError(f"{col} is not a dense 0..n-1 index", file=str(path), column=col)
