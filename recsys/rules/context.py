"""What rules know besides the candidates: user and item attributes, history, association rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import ProcessedDataset, load_dataset
from recsys.errors import DataError
from recsys.mining.inputs import history_frame, purchases, resolve_columns
from recsys.mining.outputs import MiningOutputs, load_mining

DAY = pd.Timedelta(days=1)
# Neutral values of optional attributes when a source lacks them (consents default to "no").
USER_DEFAULTS: dict[str, object] = {"marketing_consent": False, "social_image_consent": False,
                                    "preferred_channel": None, "age": np.nan}
ITEM_DEFAULTS: dict[str, object] = {"stock": -1, "age_restricted": False, "price": np.nan}


@dataclass(frozen=True)
class RuleContext:
    """Row ``i`` of ``users`` is user_idx ``i`` and row ``j`` of ``items`` is item_idx ``j``.

    ``history``: past purchases (user_idx, item_idx, timestamp); ``association``: mining rules
    (level, antecedents, consequents, lift); ``contacts``: past messages (user_idx, sent_at).
    """

    users: pd.DataFrame
    items: pd.DataFrame
    history: pd.DataFrame
    association: pd.DataFrame
    now: pd.Timestamp
    contacts: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name, table, key in (("users", self.users, "user_idx"), ("items", self.items, "item_idx")):
            if key not in table.columns or not np.array_equal(table[key].to_numpy(),
                                                             np.arange(len(table))):
                raise DataError(f"context {name}: {key} must be dense 0..n-1 in row order",
                                column=key)


def with_defaults(table: pd.DataFrame, defaults: Mapping[str, object]) -> pd.DataFrame:
    """Add missing optional columns; missing consents / flags read as False."""
    out = table.copy()
    for col, value in defaults.items():
        if col not in out.columns:
            out[col] = value
        elif isinstance(value, bool):
            out[col] = out[col].astype("object").where(out[col].notna(), value).astype(bool)
    return out


def item_signals(
    items: pd.DataFrame, history: pd.DataFrame, now: pd.Timestamp, demand_window_days: float
) -> pd.DataFrame:
    """Derived item columns: days_since_first_seen, sales_window, weekly_sales, weeks_of_cover,
    margin ((price - cost) / price unless the source has a margin column)."""
    out = items.copy()
    if "first_seen" in out.columns:
        out["days_since_first_seen"] = (now - pd.to_datetime(out["first_seen"])) / DAY
    else:
        out["days_since_first_seen"] = np.nan
    recent = history[(history["timestamp"] > now - demand_window_days * DAY)
                     & (history["timestamp"] <= now)]
    qty = recent["quantity"] if "quantity" in recent.columns else pd.Series(1, index=recent.index)
    sold = qty.groupby(recent["item_idx"]).sum()
    out["sales_window"] = out["item_idx"].map(sold).fillna(0).astype("float64")
    out["weekly_sales"] = out["sales_window"] / (demand_window_days / 7.0)
    stock = out["stock"].astype("float64").where(out["stock"] >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(out["weekly_sales"] > 0, stock / out["weekly_sales"],
                         np.where(stock > 0, np.inf, 0.0))
    out["weeks_of_cover"] = np.where(stock.isna(), np.nan, cover)
    if "margin" not in out.columns:
        if "cost" in out.columns:
            price = out["price"].astype("float64")
            out["margin"] = ((price - out["cost"]) / price.where(price > 0)).astype("float64")
        else:
            out["margin"] = np.nan
    return out


@dataclass(frozen=True)
class LoadedContext:
    """A rule context with the dataset and mining outputs it was built from."""

    context: RuleContext
    dataset: ProcessedDataset
    mining: MiningOutputs


def build_context(
    dataset_dir: Path | str,
    mining_dir: Path | str,
    *,
    history_splits: Sequence[str],
    purchase_events: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    demand_window_days: float,
    now: pd.Timestamp | None = None,
    contacts: pd.DataFrame | None = None,
) -> LoadedContext:
    """Join users.parquet with the mining outputs and items.parquet with derived signals; the
    opened dataset and mining outputs come along for reuse."""
    dataset, mining = load_dataset(dataset_dir), load_mining(mining_dir)
    hist = history_frame(dataset, history_splits)
    bought = purchases(hist, purchase_events)[["user_idx", "item_idx", "timestamp", "quantity"]]
    if now is None:
        now = pd.Timestamp(mining.meta.get("now") or hist["timestamp"].max())
    users = dataset.users.sort_values("user_idx").reset_index(drop=True)
    extra = mining.user_table().drop(columns=["user_id"], errors="ignore")
    extra = extra.drop(columns=[c for c in extra.columns if c in users.columns and c != "user_idx"])
    users = users.merge(extra, on="user_idx", how="left")
    items = dataset.items.sort_values("item_idx").reset_index(drop=True)
    for name, col in resolve_columns(items, aliases).items():
        if name not in items.columns:
            items[name] = items[col]
    items = item_signals(with_defaults(items, ITEM_DEFAULTS), bought, now, demand_window_days)
    ctx = RuleContext(
        users=with_defaults(users, USER_DEFAULTS), items=items, history=bought,
        association=mining.association_rules, now=now, contacts=contacts,
    )
    return LoadedContext(ctx, dataset, mining)
