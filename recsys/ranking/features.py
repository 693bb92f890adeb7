"""Features of each (user, candidate) pair as of the history's cut-off, vectorised: sorted int64
keys and binary search instead of per-user loops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.ranking.candidates import CandidateSet, pair_keys
from recsys.ranking.history import History
from recsys.ranking.recency import (
    basket_matrix,
    keyed_sums,
    pair_values,
    purchase_days,
    weights_from_last,
)


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
    images: np.ndarray | None = None  # [n_items, d] unit image vectors, zero rows = no image
    image_recent: int = 5  # the user's latest purchases whose images make their profile


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


@dataclass(frozen=True)
class Keyed:
    """Sorted distinct keys with their row counts and smallest ages."""

    keys: np.ndarray
    count: np.ndarray
    young: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, age: np.ndarray) -> Keyed:
        return cls(*keyed_stats(keys, age))


@dataclass(frozen=True)
class HistoryStats:
    """Everything the pair features read from one history, computed once (then each batch of
    pairs only looks values up): per (user, item), (user, group) and (user, column value)
    counts and recency; per item and per user counts, recency, popularity per window, repeat
    shares and median spend."""

    history: History
    width: dict[str, int]
    pairs: dict[str, Keyed]
    item: dict[str, np.ndarray]
    user: dict[str, np.ndarray]
    profile: np.ndarray | None = None  # unit image profile per user (see image_profiles)
    item_days: np.ndarray | None = None  # sorted item * day_span + whole days before the cut-off
    day_span: int = 0
    decayed: dict[str, np.ndarray] = field(default_factory=dict)  # "<table>@<half-life>" ->
    # per key of pairs[table]: purchases weighted 0.5 ** (days before the user's last / half-life)
    basket: sp.csr_matrix | None = None  # item x item same-basket counts (see basket_matrix)
    basket_weights: sp.csr_matrix | None = None  # user x item weights from the user's last
    taste: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # affinity
    # column -> (sorted (user, value) keys, weighted events per key) of the history's events


def _decayed(stats_pairs: dict[str, Keyed], keys: dict[str, np.ndarray], weights: np.ndarray,
             held: dict[str, np.ndarray], half_life: float) -> dict[str, np.ndarray]:
    """Per item / item-group table: the decayed sum of each of its keys (rows ``held``)."""
    return {f"{name}@{half_life:g}": keyed_sums(stats_pairs[name].keys, keys[name],
                                                weights[held[name]])
            for name in ("item", "__group") if name in stats_pairs}


def history_stats(history: History, catalog: Catalog, windows: tuple[float, ...], *,
                  half_lives: tuple[float, ...] = (), basket_half_life: float | None = None
                  ) -> HistoryStats:
    """The :class:`HistoryStats` of ``history`` for ``catalog`` and popularity ``windows``;
    purchases decayed from each user's last by ``half_lives`` and, with ``basket_half_life``,
    same-basket co-purchases (timed histories only)."""
    frame, age = history.frame, history.age_days
    h_users = frame["user_idx"].to_numpy(np.int64)
    h_items = frame["item_idx"].to_numpy(np.int64)
    width = {"item": history.n_items}
    keys = {"item": pair_keys(h_users, h_items, history.n_items)}
    held = {"item": np.ones(len(h_items), dtype=bool)}
    pairs = {"item": Keyed.of(keys["item"], age)}
    codes = dict(catalog.affinity)
    if catalog.groups is not None:
        codes["__group"] = np.asarray(catalog.groups, np.int64)
    for name, code in codes.items():
        code = np.asarray(code, np.int64)
        width[name] = int(code.max(initial=-1)) + 1
        held[name] = code[h_items] >= 0
        keys[name] = pair_keys(h_users[held[name]], code[h_items][held[name]], width[name])
        pairs[name] = Keyed.of(keys[name], age[held[name]])
    i_count, i_young, i_old = _per_index(h_items, history.n_items, age)
    u_count, u_young, u_old = _per_index(h_users, history.n_users, age)
    decayed: dict[str, np.ndarray] = {}
    basket = basket_weights = None
    if history.timed:
        for hl in half_lives:
            decayed.update(_decayed(pairs, keys, weights_from_last(age, h_users, u_young, hl),
                                    held, hl))
        if basket_half_life is not None and len(frame):
            basket = basket_matrix(h_users, h_items, age, history.n_items)
            basket_weights = history.matrix(weights_from_last(age, h_users, u_young,
                                                              basket_half_life))
    distinct = pairs["item"].keys
    item = {"count": i_count, "young": i_young, "old": i_old,
            "buyers": np.bincount(distinct % history.n_items, minlength=history.n_items)
            .astype(np.float64)}
    user = {"count": u_count, "young": u_young, "old": u_old,
            "items": np.bincount(distinct // history.n_items, minlength=history.n_users)
            .astype(np.float64)}
    if history.timed:
        for w in windows:
            item[f"pop_{w:g}d"] = np.bincount(h_items[age <= w], minlength=history.n_items) / w
        user["days"] = purchase_days(h_users, age, history.n_users)
        with np.errstate(invalid="ignore", divide="ignore"):
            user["gap"] = np.where(user["days"] >= 2, (u_old - u_young) / (user["days"] - 1),
                                   np.nan)
    if catalog.price is not None:
        price = np.asarray(catalog.price, np.float64)
        spend = pd.Series(price[h_items]).groupby(h_users).median()
        median = np.full(history.n_users, np.nan)
        median[spend.index.to_numpy(np.int64)] = spend.to_numpy()
        user["median_price"] = median
    profile = None if catalog.images is None else \
        image_profiles(history, catalog.images, catalog.image_recent)
    item_days, span = None, 0
    if history.timed and len(frame):
        days = np.floor(age).astype(np.int64)
        span = int(days.max()) + int(max(windows, default=0.0)) + 2
        item_days = np.sort(h_items * np.int64(span) + days)
    taste: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if history.events is not None:
        e_users = history.events["user_idx"].to_numpy(np.int64)
        e_items = history.events["item_idx"].to_numpy(np.int64)
        e_weight = history.events["weight"].to_numpy(np.float64)
        user["event_weight"] = np.bincount(e_users, weights=e_weight, minlength=history.n_users)
        for name, code in catalog.affinity.items():
            value = np.asarray(code, np.int64)[e_items]
            ok = value >= 0
            uniq, inverse = np.unique(pair_keys(e_users[ok], value[ok], width[name]),
                                      return_inverse=True)
            taste[name] = (uniq, np.bincount(inverse, weights=e_weight[ok], minlength=len(uniq)))
    return HistoryStats(history, width, pairs, item, user, profile, item_days, span, decayed,
                        basket, basket_weights, taste)


def popularity_at_user(stats: HistoryStats, users: np.ndarray, items: np.ndarray,
                       windows: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per window: purchases per day of each pair's item over the ``window`` days up to its
    user's last purchase day (NaN for users without one), popularity when the user was last
    active. The queries are searched in sorted order (one sort for every window)."""
    out = {w: np.full(len(items), np.nan) for w in windows}
    last = stats.user["young"][users]
    has = np.flatnonzero(~np.isnan(last))
    if stats.item_days is None or not len(has):
        return out
    start = items[has] * np.int64(stats.day_span) + np.floor(last[has]).astype(np.int64)
    order = np.argsort(start)
    start = start[order]
    first = np.searchsorted(stats.item_days, start)
    for w in windows:
        count = np.searchsorted(stats.item_days, start + int(np.ceil(w))) - first
        out[w][has[order]] = count / float(w)
    return out


def image_profiles(history: History, images: np.ndarray, recent: int) -> np.ndarray:
    """Per user: the unit mean image vector of their ``recent`` latest purchases that have an
    image (zero without any)."""
    frame = history.frame
    users = frame["user_idx"].to_numpy(np.int64)
    items = frame["item_idx"].to_numpy(np.int64)
    has = np.abs(images).sum(axis=1) > 0
    keep = has[items]
    users, items, age = users[keep], items[keep], np.nan_to_num(history.age_days[keep])
    order = np.lexsort((np.arange(len(users)), age, users))  # per user, latest first
    users, items = users[order], items[order]
    nth = np.arange(len(users)) - np.searchsorted(users, users)
    users, items = users[nth < recent], items[nth < recent]
    out = np.zeros((history.n_users, images.shape[1]), np.float32)
    np.add.at(out, users, images[items])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def _pair_lookup(stats: HistoryStats, name: str, code: np.ndarray | None, users: np.ndarray,
                 items: np.ndarray, half_lives: tuple[float, ...] = ()
                 ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(count, days since the last, decayed sum per half-life) of each pair's key in table
    ``name``: the item itself, or its value of ``code`` (pairs whose item has none get 0 / NaN
    / 0)."""
    table = stats.pairs[name]
    value = items if code is None else np.asarray(code, np.int64)[items]
    query = pair_keys(users, value, stats.width[name])
    query[value < 0] = -1
    count, young = np.zeros(len(query)), np.full(len(query), np.nan)
    sums = [np.zeros(len(query)) for _ in half_lives]
    if len(table.keys):
        pos = np.minimum(np.searchsorted(table.keys, query), len(table.keys) - 1)
        hit = np.flatnonzero(table.keys[pos] == query)
        count[hit], young[hit] = table.count[pos[hit]], table.young[pos[hit]]
        for out, hl in zip(sums, half_lives, strict=True):
            out[hit] = stats.decayed[f"{name}@{hl:g}"][pos[hit]]
    return count, young, sums


def build_features(cands: CandidateSet, history: History | HistoryStats, catalog: Catalog,
                   windows: tuple[float, ...], *, half_lives: tuple[float, ...] = (),
                   basket_half_life: float | None = None, taste_smoothing: float = 0.05
                   ) -> FeatureMatrix:
    """Source scores and ranks; user-item and user-group purchase counts, days since the last
    one and (per half-life) purchases decayed from the user's last; same-basket co-purchases of
    the item with the user's recency-weighted purchases; the user's share of purchases sharing
    each affinity column's value with the item and, with the history's weighted events, the
    user's share of events sharing it (taste) and the sum of log(share + ``taste_smoothing``)
    over the columns; item popularity per window and its trend; item
    age and repeat share; price against the user's median; image similarity to the user's
    latest purchases (with image vectors); user activity, purchase days and mean days between
    them, repeat share and attribute columns; item attribute columns. ``history`` may be its
    precomputed :func:`history_stats` (for ``catalog`` and the same settings)."""
    stats = history if isinstance(history, HistoryStats) else \
        history_stats(history, catalog, windows, half_lives=half_lives,
                      basket_half_life=basket_half_life)
    timed = stats.history.timed
    half_lives = half_lives if timed else ()
    cols: dict[str, np.ndarray] = {}
    for name in cands.scores:
        cols[f"{name}_score"] = cands.scores[name]
        cols[f"{name}_rank"] = cands.ranks[name]
    cols["n_sources"] = sum((~np.isnan(r)).astype(np.float64) for r in cands.ranks.values()) \
        if cands.ranks else np.zeros(len(cands))
    users = cands.users[cands.rows]
    items = cands.items
    it, us = stats.item, stats.user
    cols["ui_count"], cols["ui_days_since"], sums = _pair_lookup(stats, "item", None, users,
                                                                 items, half_lives)
    cols.update({f"ui_decayed_{hl:g}d": v for hl, v in zip(half_lives, sums, strict=True)})
    user_last = us["young"][users]
    if timed:  # relative to the user's last purchase: 0 = bought on the user's last day
        cols["ui_days_before_last"] = cols["ui_days_since"] - user_last
    if catalog.groups is not None:
        cols["ug_count"], cols["ug_days_since"], sums = _pair_lookup(
            stats, "__group", catalog.groups, users, items, half_lives)
        cols.update({f"ug_decayed_{hl:g}d": v for hl, v in zip(half_lives, sums, strict=True)})
        if timed:
            cols["ug_days_before_last"] = cols["ug_days_since"] - user_last
    if stats.basket is not None and stats.basket_weights is not None:
        mine = (stats.basket_weights[cands.users] @ stats.basket).tocsr()
        cols["basket_score"] = pair_values(mine, cands.rows, items)
    for name, code in catalog.affinity.items():
        cols[f"aff_{name}"] = _pair_lookup(stats, name, code, users, items)[0] \
            / np.maximum(us["count"][users], 1.0)
    if stats.taste:
        total = np.maximum(us["event_weight"][users], 1e-12)
        log_sum = np.zeros(len(items))
        for name, code in catalog.affinity.items():
            value = np.asarray(code, np.int64)[items]
            query = pair_keys(users, value, stats.width[name])
            query[value < 0] = -1
            share = lookup(*stats.taste[name], query, 0.0) / total
            cols[f"taste_{name}"] = share
            log_sum += np.log(share + taste_smoothing)
        cols["taste_log_sum"] = log_sum
    cols["item_count"] = it["count"][items]
    cols["item_repeat_share"] = 1.0 - it["buyers"][items] / np.maximum(it["count"][items], 1.0)
    if timed:
        cols["item_days_since_last"] = it["young"][items]
        cols["item_days_since_first"] = it["old"][items]
        at_user = popularity_at_user(stats, users, items, windows)
        for w in windows:
            cols[f"item_pop_{w:g}d"] = it[f"pop_{w:g}d"][items]
            cols[f"item_pop_{w:g}d_at_user"] = at_user[w]
        if len(windows) > 1:
            cols["item_trend"] = (it[f"pop_{windows[0]:g}d"][items] + 1e-3) \
                / (it[f"pop_{windows[-1]:g}d"][items] + 1e-3)
    cols["user_count"] = us["count"][users]
    cols["user_items"] = us["items"][users]
    cols["user_repeat_share"] = 1.0 - us["items"][users] / np.maximum(us["count"][users], 1.0)
    if timed:
        cols["user_days_since_last"] = us["young"][users]
        cols["user_days_since_first"] = us["old"][users]
        cols["user_days"] = us["days"][users]
        cols["user_gap_days"] = us["gap"][users]
    if catalog.price is not None:
        price = np.asarray(catalog.price, np.float64)
        cols["item_price"] = price[items]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["price_vs_user"] = price[items] / us["median_price"][users]
    if stats.profile is not None and catalog.images is not None:
        sim = np.zeros(len(items), np.float32)
        for s in range(0, len(items), 65536):  # row-wise dot products in bounded blocks
            sim[s : s + 65536] = np.einsum("ij,ij->i", stats.profile[users[s : s + 65536]],
                                           catalog.images[items[s : s + 65536]])
        cols["image_sim_recent"] = sim
    for j, name in enumerate(catalog.user_names):
        cols[f"user_{name}"] = catalog.user_values[users, j]
    for j, name in enumerate(catalog.item_names):
        cols[f"item_{name}"] = catalog.item_values[items, j]
    by_column = np.empty((len(cols), len(cands)), np.float32)  # filled row by row: contiguous
    for j, v in enumerate(cols.values()):
        by_column[j] = v
    by_column[~np.isfinite(by_column)] = np.nan
    return FeatureMatrix(tuple(cols), by_column.T)  # a column-major [pair, feature] view
