"""Per-user profile documents (one JSON object per line) grouped by the four dimensions."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

PURCHASING_POWER = (
    "total_spend", "n_orders", "avg_order_value", "avg_item_price", "min_price", "max_price",
    "orders_per_30d", "spend_tier", "price_index", "price_sensitive", "quality_focused",
)
HABITS = (
    "active_hours", "top_hour", "active_weekdays", "top_weekday", "channel_preference",
    "preferred_channel", "n_events",
)


def _plain(value: Any) -> Any:
    """JSON-safe Python value: numpy scalars unwrapped, NaN/NaT/None to None, arrays to lists."""
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def dimensions(columns: Iterable[str], demographics: Sequence[str]) -> dict[str, list[str]]:
    """Assign profile table columns to the four dimensions."""
    cols = list(columns)
    return {
        "demographics": [c for c in cols if c in demographics],
        "preferences": [c for c in cols if c.startswith(("pref_", "top_")) and c != "top_hour"
                        and c != "top_weekday"],
        "purchasing_power": [c for c in cols if c in PURCHASING_POWER],
        "habits": [c for c in cols if c in HABITS],
    }


def profile_documents(profiles: pd.DataFrame, demographics: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Yield one nested document per user."""
    dims = dimensions(profiles.columns, demographics)
    for rec in profiles.to_dict(orient="records"):
        doc: dict[str, Any] = {"user_idx": _plain(rec["user_idx"]), "user_id": _plain(rec["user_id"])}
        for dim, cols in dims.items():
            doc[dim] = {c: _plain(rec[c]) for c in cols}
        yield doc


def to_jsonl(profiles: pd.DataFrame, demographics: Sequence[str]) -> str:
    """All documents as JSON lines."""
    return "".join(
        json.dumps(doc, ensure_ascii=False) + "\n" for doc in profile_documents(profiles, demographics)
    )
