"""Cached CNN image features as the towers read them, checked against the dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import DataError


@dataclass(frozen=True)
class ImageArrays:
    """Product- and social-image features (the layout of ``recsys.images.features``)."""

    item_features: np.ndarray  # [n_items, D] float32, aligned to item_idx
    item_mask: np.ndarray  # [n_items] bool
    user_image_features: np.ndarray  # [n_images, D] float32
    user_image_offsets: np.ndarray  # [n_users + 1] CSR offsets into user_image_features

    @property
    def dim(self) -> int:
        return int(self.item_features.shape[1])


def from_features(features: Any, n_users: int, n_items: int, source: str) -> ImageArrays:
    """Convert and check an ``ImageFeatures`` object (any object with its attributes)."""
    try:
        item = np.asarray(features.item_features, dtype=np.float32)
        mask = np.asarray(features.item_mask, dtype=bool)
        social = np.asarray(features.user_image_features, dtype=np.float32)
        offsets = np.asarray(features.user_image_offsets, dtype=np.int64)
    except AttributeError as err:
        raise DataError(f"image features lack a field ({err})", file=source) from None
    if item.ndim != 2 or item.shape[0] != n_items:
        raise DataError(
            f"item_features has shape {item.shape}, expected [{n_items}, D] (one row per item)",
            file=source, column="item_features",
        )
    if mask.shape != (n_items,):
        raise DataError(f"item_mask has shape {mask.shape}, expected [{n_items}]",
                        file=source, column="item_mask")
    if social.size == 0:
        social = np.zeros((0, item.shape[1]), dtype=np.float32)
    if social.ndim != 2 or social.shape[1] != item.shape[1]:
        raise DataError(
            f"incompatible dimensions: user_image_features {social.shape} vs item_features "
            f"{item.shape} (both must have D columns)", file=source, column="user_image_features",
        )
    if offsets.shape != (n_users + 1,) or offsets[-1] != social.shape[0]:
        raise DataError(
            f"user_image_offsets must have {n_users + 1} entries ending at {social.shape[0]}",
            file=source, column="user_image_offsets",
        )
    if not np.isfinite(item).all() or not np.isfinite(social).all():
        raise DataError("image features hold NaN or infinite values", file=source)
    return ImageArrays(item, mask, social, offsets)


def load_image_arrays(directory: Path, n_users: int, n_items: int) -> ImageArrays:
    """Read the feature cache written by ``recsys-features`` for one dataset."""
    try:
        from recsys.images.features import load_features
    except ImportError as err:  # pragma: no cover - the images stage is part of the package
        raise DataError(f"image features cannot be read ({err})", file=str(directory)) from None
    if not Path(directory).exists():
        raise DataError(
            "image features not found; run recsys-features for this dataset first "
            "or use experiment=id_only", file=str(directory),
        )
    return from_features(load_features(Path(directory)), n_users, n_items, str(directory))


def find_features_dir(features_root: Path, dataset_dir: Path, manifest: dict[str, Any],
                      encoder_name: str) -> Path:
    """The newest features directory that ``recsys-features`` wrote for this dataset (same
    name and fingerprint) with encoder ``encoder_name``."""
    name = manifest.get("name") or Path(dataset_dir).name
    fingerprint = str(manifest.get("data_fingerprint") or "")[:12]
    base = Path(features_root) / f"{name}-{fingerprint}".rstrip("-")
    found = []
    for report in base.glob("*/report.json"):
        try:
            encoder = json.loads(report.read_text()).get("encoder")
        except (OSError, json.JSONDecodeError):
            continue
        if encoder == encoder_name:
            found.append((report.stat().st_mtime, report.parent))
    if not found:
        raise DataError(
            f"no image features for encoder {encoder_name!r}; run recsys-features for this "
            f"dataset first (or set datamodule.image_features_dir to a features directory)",
            file=str(base),
        )
    return max(found)[1]
