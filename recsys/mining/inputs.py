"""The slices of a processed dataset that mining reads: history, purchases, users, items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.data import ProcessedDataset, load_dataset
from recsys.errors import DataError

_INTERACTION_COLUMNS = ("user_idx", "item_idx", "timestamp", "event", "quantity", "price", "channel")


@dataclass(frozen=True)
class MiningInputs:
    """History interactions (all events), their purchases, users and items, and the reference time."""

    interactions: pd.DataFrame
    purchases: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    now: pd.Timestamp
    source: Path
    user_numeric: list[str]

    @property
    def n_users(self) -> int:
        return len(self.users)


def resolve_columns(frame: pd.DataFrame, candidates: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Map each canonical attribute to the first of its candidate columns present in ``frame``."""
    out: dict[str, str] = {}
    for name, options in candidates.items():
        found = next((c for c in options if c in frame.columns), None)
        if found is not None:
            out[name] = found
    return out


def history_frame(dataset: ProcessedDataset, splits: Sequence[str]) -> pd.DataFrame:
    """Concatenate the named splits, checking the interaction columns mining needs."""
    frames = []
    for split in splits:
        df = dataset.split(split)
        missing = [c for c in _INTERACTION_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(
                "interactions lack columns needed for mining",
                file=str(dataset.path / f"{split}.parquet"), column=missing[0],
            )
        frames.append(df)
    hist = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return hist.sort_values("timestamp", kind="stable").reset_index(drop=True)


def load_inputs(
    path: Path | str, splits: Sequence[str], purchase_events: Sequence[str]
) -> MiningInputs:
    """Read the history of ``splits`` from the processed dataset at ``path``."""
    dataset = load_dataset(path)
    hist = history_frame(dataset, splits)
    if hist.empty:
        raise DataError(f"no interactions in splits {list(splits)}", file=str(dataset.path))
    users = dataset.users.sort_values("user_idx").reset_index(drop=True)
    items = dataset.items.sort_values("item_idx").reset_index(drop=True)
    for name, table in (("users", users), ("items", items)):
        key = f"{name[:-1]}_idx"
        if not table[key].equals(pd.Series(range(len(table)), name=key, dtype=table[key].dtype)):
            raise DataError(f"{key} is not dense 0..n-1", file=str(dataset.path / f"{name}.parquet"),
                            column=key)
    purchases = hist[hist["event"].isin(list(purchase_events))].copy()
    purchases["quantity"] = purchases["quantity"].fillna(1).astype("int64")
    purchases["price"] = purchases["price"].fillna(
        purchases["item_idx"].map(items["price"]) if "price" in items.columns else 0.0
    )
    purchases["amount"] = purchases["price"] * purchases["quantity"]
    now = pd.Timestamp(hist["timestamp"].max())
    numeric = [f"{c}_z" for c in dataset.features.get("users", {}).get("numeric", [])]
    return MiningInputs(
        hist, purchases.reset_index(drop=True), users, items, now, dataset.path, numeric
    )
