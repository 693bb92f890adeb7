"""The processed dataset on disk: loading with schema checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.fitted import FittedParams
from recsys.data.fitted_io import load_fitted
from recsys.data.schema import SPLITS
from recsys.errors import DataError

_SPLIT_COLUMNS = ["user_idx", "item_idx", "timestamp", "positive"]
_REQUIRED = {
    **dict.fromkeys(SPLITS, _SPLIT_COLUMNS),
    "users": ["user_idx", "user_id"],
    "items": ["item_idx", "item_id"],
    "user_images": ["user_idx", "image_path"],
}


def _lazy(name: str) -> cached_property[pd.DataFrame]:
    """A table read (and schema-checked) on first access, then kept."""

    def load(self: ProcessedDataset) -> pd.DataFrame:
        return self._table(name)

    load.__name__ = load.__qualname__ = name
    return cached_property(load)


@dataclass(frozen=True)
class ProcessedDataset:
    """A processed dataset directory; tables load lazily on first access."""

    path: Path
    manifest: dict[str, Any]
    vocabs: dict[str, list[str]]
    features: dict[str, dict[str, list[str]]]

    def _table(self, name: str) -> pd.DataFrame:
        path = self.path / f"{name}.parquet"
        try:
            df = pd.read_parquet(path)
        except FileNotFoundError:
            raise DataError("processed table missing; rerun recsys-data", file=str(path)) from None
        except Exception as err:  # pyarrow raises several types for corrupted files
            raise DataError(f"unreadable processed table ({err})", file=str(path)) from None
        missing = [c for c in _REQUIRED.get(name, []) if c not in df.columns]
        if missing:
            raise DataError(f"processed table lacks columns {missing}", file=str(path), column=missing[0])
        return df

    train = _lazy("train")
    val = _lazy("val")
    test = _lazy("test")
    users = _lazy("users")
    items = _lazy("items")
    user_images = _lazy("user_images")

    @cached_property
    def fitted(self) -> FittedParams:
        """The statistics fitted on the training split (``fitted.json`` and its arrays)."""
        return load_fitted(self.path)

    @property
    def image_root(self) -> Path:
        return Path(self.manifest["image_root"])

    @property
    def n_users(self) -> int:
        return int(self.manifest["row_counts"]["users"])

    @property
    def n_items(self) -> int:
        return int(self.manifest["row_counts"]["items"])

    def split(self, name: str) -> pd.DataFrame:
        """One of ``train``, ``val``, ``test``."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r} ({', '.join(SPLITS)})")
        frame: pd.DataFrame = getattr(self, name)
        return frame


def load_dataset(path: Path | str) -> ProcessedDataset:
    """Open a processed dataset directory written by ``recsys-data``."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise DataError("not a processed dataset (no manifest.json); run recsys-data first", file=str(path))
    try:
        manifest = json.loads(manifest_path.read_text())
        vocabs = json.loads((path / "vocabs.json").read_text())
        features = json.loads((path / "features.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"unreadable dataset metadata ({err})", file=str(path)) from None
    return ProcessedDataset(path=path, manifest=manifest, vocabs=vocabs, features=features)


__all__ = ["ProcessedDataset", "load_dataset"]
