"""The slices of a processed dataset that mining reads: history, purchases, users, items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import ProcessedDataset, load_dataset
from recsys.errors import DataError
from recsys.mining.rfm import order_keys

_INTERACTION_COLUMNS = ("user_idx", "item_idx", "timestamp", "event", "quantity", "price", "channel")


@dataclass(frozen=True)
class MiningInputs:
    """History interactions (all events), their purchases (with amount and order, see
    :func:`purchases_with_amount`), users and items, and the reference time."""

    interactions: pd.DataFrame
    purchases: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    now: pd.Timestamp
    source: Path
    user_numeric: list[str]


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


def purchase_mask(frame: pd.DataFrame, events: Sequence[str]) -> pd.Series:
    """Purchase rows: ``event`` in ``events``; a frame without ``event`` uses its ``positive`` flag."""
    if "event" in frame.columns:
        return frame["event"].isin(list(events))
    if "positive" in frame.columns:
        return frame["positive"].astype(bool)
    raise DataError("interactions have neither an event nor a positive column", column="event")


def purchases(frame: pd.DataFrame, events: Sequence[str]) -> pd.DataFrame:
    """Purchase rows of ``frame`` (see :func:`purchase_mask`), re-indexed 0..n-1, with an int64
    ``quantity`` (missing: 1)."""
    p = frame[purchase_mask(frame, events)].reset_index(drop=True)
    qty = (p["quantity"].fillna(1).astype("int64") if "quantity" in p.columns
           else pd.Series(1, index=p.index, dtype="int64"))
    return p.assign(quantity=qty)


def purchases_with_amount(
    frame: pd.DataFrame, items: pd.DataFrame, events: Sequence[str]
) -> pd.DataFrame:
    """:func:`purchases` with price (missing: the item's price, or 0 when items have no price), amount =
    price * quantity (0 where the price is unknown) and ``order`` (see :func:`order_keys`)."""
    p = purchases(frame, events)
    qty = p["quantity"]
    price = p["price"] if "price" in p.columns else pd.Series(np.nan, index=p.index)
    if "price" in items.columns:
        price = price.fillna(p["item_idx"].map(items.set_index("item_idx")["price"]))
    else:
        price = price.fillna(0.0)
    order = order_keys(p) if len(p) else pd.Series(dtype="int64", index=p.index)
    return p.assign(quantity=qty, price=price, amount=price.fillna(0.0) * qty, order=order)


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
    purchases = purchases_with_amount(hist, items, purchase_events)
    now = pd.Timestamp(hist["timestamp"].max())
    numeric = [f"{c}_z" for c in dataset.features.get("users", {}).get("numeric", [])]
    return MiningInputs(
        hist, purchases, users, items, now, dataset.path, numeric
    )
