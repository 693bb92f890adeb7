"""Features of each (user, candidate) pair as of the history's cut-off, vectorised: sorted int64
keys and binary search instead of per-user loops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.ranking.candidates import CandidateSet, pair_keys
from recsys.ranking.history import History


@dataclass(frozen=True)
class Catalog:
    """What the features read besides the history: an item group code per item (siblings;
    negative = none), an item price (NaN = unknown), user and item attribute columns."""

    groups: np.ndarray | None
    price: np.ndarray | None
    user_values: np.ndarray  # [n_users, len(user_names)] float
    user_names: tuple[str, ...]
    item_values: np.ndarray  # [n_items, len(item_names)] float
    item_names: tuple[str, ...]
    affinity: dict[str, np.ndarray] = field(default_factory=dict)  # column -> code per item


@dataclass(frozen=True)
class FeatureMatrix:
    """``values[pair, feature]`` (float32, NaN = missing) with the feature ``names``."""

    names: tuple[str, ...]
    values: np.ndarray


def keyed_stats(keys: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct key: ``(keys, row count, smallest age)`` (sorted by key)."""
    order = np.argsort(keys, kind="stable")
    k, a = keys[order], age[order]
    uniq, start, count = np.unique(k, return_index=True, return_counts=True)
    youngest = np.minimum.reduceat(a, start) if len(a) else np.empty(0)
    return uniq, count.astype(np.float64), youngest


def lookup(table: np.ndarray, values: np.ndarray, query: np.ndarray, default: float
           ) -> np.ndarray:
    """``values`` at ``query``'s position in the sorted ``table`` (``default`` where absent)."""
    out = np.full(len(query), default, dtype=np.float64)
    if len(table) == 0:
        return out
    pos = np.minimum(np.searchsorted(table, query), len(table) - 1)
    hit = table[pos] == query
    out[hit] = values[pos[hit]]
    return out


def _per_index(index: np.ndarray, size: int, age: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value of ``index`` in ``0..size-1``: rows, smallest and largest age (NaN if none)."""
    count = np.bincount(index, minlength=size).astype(np.float64)
    young = np.full(size, np.inf)
    old = np.full(size, -np.inf)
    with np.errstate(invalid="ignore"):  # NaN ages: data without timestamps
        np.minimum.at(young, index, age)
        np.maximum.at(old, index, age)
    young[count == 0] = np.nan
    old[count == 0] = np.nan
    return count, young, old


def _affinity(codes: np.ndarray, h_users: np.ndarray, h_items: np.ndarray, users: np.ndarray,
              items: np.ndarray) -> np.ndarray:
    """Per pair: the user's purchases of items sharing the candidate's value of a column."""
    codes = np.asarray(codes, np.int64)
    width = int(codes.max(initial=-1)) + 1
    table, count, _ = keyed_stats(pair_keys(h_users, codes[h_items], width),
                                  np.zeros(len(h_users)))
    query = pair_keys(users, codes[items], width)
    query[codes[items] < 0] = -1
    return lookup(table, count, query, 0.0)


def build_features(cands: CandidateSet, history: History, catalog: Catalog,
                   windows: tuple[float, ...]) -> FeatureMatrix:
    """Source scores and ranks; user-item and user-group purchase counts and days since the last
    one; the user's share of purchases sharing each affinity column's value with the item; item
    popularity per window and its trend; item age; price against the user's median; user
    activity and attribute columns; item attribute columns."""
    cols: dict[str, np.ndarray] = {}
    for name in cands.scores:
        cols[f"{name}_score"] = cands.scores[name]
        cols[f"{name}_rank"] = cands.ranks[name]
    cols["n_sources"] = sum((~np.isnan(r)).astype(np.float64) for r in cands.ranks.values()) \
        if cands.ranks else np.zeros(len(cands))
    users = cands.users[cands.rows]
    items = cands.items
    frame, age = history.frame, history.age_days
    h_users = frame["user_idx"].to_numpy(np.int64)
    h_items = frame["item_idx"].to_numpy(np.int64)
    table, count, young = keyed_stats(pair_keys(h_users, h_items, history.n_items), age)
    query = pair_keys(users, items, history.n_items)
    cols["ui_count"] = lookup(table, count, query, 0.0)
    cols["ui_days_since"] = lookup(table, young, query, np.nan)
    buyers = np.bincount(table % history.n_items, minlength=history.n_items).astype(np.float64)
    user_items = np.bincount(table // history.n_items, minlength=history.n_users)
    if catalog.groups is not None:
        groups = np.asarray(catalog.groups, np.int64)
        n_groups = int(groups.max(initial=-1)) + 2  # slot n_groups-1: items without a group
        g_hist = np.where(groups[h_items] >= 0, groups[h_items], n_groups - 1)
        g_cand = np.where(groups[items] >= 0, groups[items], -1)
        table, count, young = keyed_stats(pair_keys(h_users, g_hist, n_groups), age)
        query = pair_keys(users, g_cand, n_groups)
        query[g_cand < 0] = -1
        cols["ug_count"] = lookup(table, count, query, 0.0)
        cols["ug_days_since"] = lookup(table, young, query, np.nan)
    u_count, u_young, u_old = _per_index(h_users, history.n_users, age)
    for name, codes in catalog.affinity.items():
        cols[f"aff_{name}"] = _affinity(codes, h_users, h_items, users, items) \
            / np.maximum(u_count[users], 1.0)
    i_count, i_young, i_old = _per_index(h_items, history.n_items, age)
    cols["item_count"] = i_count[items]
    cols["item_repeat_share"] = 1.0 - buyers[items] / np.maximum(i_count[items], 1.0)
    if history.timed:
        cols["item_days_since_last"] = i_young[items]
        cols["item_days_since_first"] = i_old[items]
        pops = [np.bincount(h_items[age <= w], minlength=history.n_items) / float(w)
                for w in windows]
        for w, pop in zip(windows, pops, strict=True):
            cols[f"item_pop_{w:g}d"] = pop[items]
        if len(pops) > 1:
            cols["item_trend"] = (pops[0][items] + 1e-3) / (pops[-1][items] + 1e-3)
    cols["user_count"] = u_count[users]
    cols["user_items"] = user_items[users]
    cols["user_repeat_share"] = 1.0 - user_items[users] / np.maximum(u_count[users], 1.0)
    if history.timed:
        cols["user_days_since_last"] = u_young[users]
        cols["user_days_since_first"] = u_old[users]
    if catalog.price is not None:
        price = np.asarray(catalog.price, np.float64)
        spend = pd.Series(price[h_items]).groupby(h_users).median()
        median = np.full(history.n_users, np.nan)
        median[spend.index.to_numpy(np.int64)] = spend.to_numpy()
        cols["item_price"] = price[items]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["price_vs_user"] = price[items] / median[users]
    for j, name in enumerate(catalog.user_names):
        cols[f"user_{name}"] = catalog.user_values[users, j]
    for j, name in enumerate(catalog.item_names):
        cols[f"item_{name}"] = catalog.item_values[items, j]
    values = np.column_stack([np.asarray(v, np.float32) for v in cols.values()]) if cols else \
        np.empty((len(cands), 0), np.float32)
    values[~np.isfinite(values)] = np.nan
    return FeatureMatrix(tuple(cols), values)
