"""The purchase history as of a cut-off: every candidate source and feature reads only rows
strictly before it, so training rows never see their own label period."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import DataError

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class History:
    """Positive interactions ``frame`` (user_idx, item_idx, timestamp) before ``cutoff``.

    ``cutoff`` is None on data without timestamps: then every row counts and the time features
    are missing (NaN). ``events``: weighted interactions of every configured type (views,
    clicks, carts... and purchases; see :func:`weighted_events`) before the same cut-off, that
    the taste features read; None when not configured."""

    frame: pd.DataFrame
    n_users: int
    n_items: int
    cutoff: pd.Timestamp | None
    events: pd.DataFrame | None = None

    @property
    def timed(self) -> bool:
        return self.cutoff is not None

    @cached_property
    def age_days(self) -> np.ndarray:
        """Days from each row to the cut-off (NaN without timestamps)."""
        if self.cutoff is None:
            return np.full(len(self.frame), np.nan)
        delta = (self.cutoff - self.frame["timestamp"]).dt.total_seconds().to_numpy()
        return np.asarray(delta / 86400.0, dtype=np.float64)

    def matrix(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """Sum of ``weights`` (row counts when None) per (user, item), CSR with sorted indices."""
        data = np.ones(len(self.frame)) if weights is None else np.asarray(weights, np.float64)
        mat = sp.csr_matrix((data, (self.frame["user_idx"].to_numpy(np.int64),
                                    self.frame["item_idx"].to_numpy(np.int64))),
                            shape=(self.n_users, self.n_items))
        mat.sum_duplicates()
        mat.sort_indices()
        return mat

    @cached_property
    def counts(self) -> sp.csr_matrix:
        """Purchases per (user, item)."""
        return self.matrix()

    def decayed(self, half_life_days: float | None) -> sp.csr_matrix:
        """Per (user, item) sum of ``0.5 ** (age / half_life)`` (counts without a half-life or
        without timestamps)."""
        if half_life_days is None or not self.timed:
            return self.counts
        return self.matrix(np.power(0.5, self.age_days / float(half_life_days)))

    def recent(self, window_days: float | None) -> pd.DataFrame:
        """Rows within ``window_days`` before the cut-off (all rows when None or untimed)."""
        if window_days is None or not self.timed:
            return self.frame
        return self.frame[self.age_days <= float(window_days)]


def history_as_of(
    frame: pd.DataFrame, n_users: int, n_items: int, cutoff: pd.Timestamp | str | None = None,
    source: str = "history",
) -> History:
    """The rows of ``frame`` strictly before ``cutoff`` (default: the day after the latest row).

    A cut-off outside the data (before its first row, or more than a day after its last) is a
    :class:`DataError` naming ``source``; so is a cut-off on data without timestamps."""
    frame = frame[["user_idx", "item_idx", "timestamp"]]
    ts = frame["timestamp"]
    timed = bool(ts.notna().any())
    if not timed:
        if cutoff is not None:
            raise DataError(f"cut-off {cutoff} given but the interactions have no timestamps",
                            file=source, column="timestamp")
        return History(frame.reset_index(drop=True), n_users, n_items, None)
    first, last = ts.min(), ts.max()
    end = last.normalize() + DAY
    when = end if cutoff is None else pd.Timestamp(cutoff)
    if when <= first or when > end:
        raise DataError(f"cut-off {when.date()} is outside the data ({first.date()} .. "
                        f"{last.date()})", file=source, column="timestamp")
    kept = frame[ts < when].reset_index(drop=True)
    return History(kept, n_users, n_items, when)


def weighted_events(frame: pd.DataFrame, weights: Mapping[str, float], source: str
                    ) -> pd.DataFrame:
    """The rows of ``frame`` whose ``event`` type has a positive weight in ``weights``, as
    (user_idx, item_idx, timestamp, weight); a DataError naming ``source`` when ``frame`` has
    no event column."""
    if "event" not in frame.columns:
        raise DataError("candidates.features.events needs the interactions' event types, and "
                        "this table has no event column", file=source, column="event")
    weight = frame["event"].astype(str).map(dict(weights)).astype("float64")
    keep = (weight > 0).to_numpy()
    out = frame.loc[keep, ["user_idx", "item_idx", "timestamp"]].reset_index(drop=True)
    out["weight"] = weight.to_numpy()[keep]
    return out


def events_before(events: pd.DataFrame, cutoff: pd.Timestamp | None,
                  user_cut: pd.Series | None = None) -> pd.DataFrame:
    """The rows of ``events`` before ``cutoff`` (every row when None) and, for the users of
    ``user_cut`` (user_idx -> timestamp), before their own cut-off."""
    keep = np.ones(len(events), dtype=bool)
    if cutoff is not None:
        keep &= (events["timestamp"] < cutoff).to_numpy()
    if user_cut is not None and len(user_cut):
        limit = events["user_idx"].map(user_cut)
        keep &= ~(limit.notna() & (events["timestamp"] >= limit)).to_numpy()
    return events[keep].reset_index(drop=True)


def hold_out_last_day(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An earlier labelled period inside ``frame``: each user's last purchase day (users with at
    least two such days) as labels, every other row as their history: ``(history, labels)``."""
    day = frame["timestamp"].dt.normalize()
    last = day.groupby(frame["user_idx"]).transform("max")
    days = day.groupby(frame["user_idx"]).transform("nunique")
    held = ((day == last) & (days >= 2)).to_numpy()
    return frame[~held], frame[held]


def window_start(frame: pd.DataFrame, days: float) -> pd.Timestamp:
    """The first moment of the last ``days`` days of ``frame`` (counted from the day after its
    latest row)."""
    return frame["timestamp"].max().normalize() + DAY - pd.Timedelta(days=float(days))


def hold_out_window(frame: pd.DataFrame, days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An earlier labelled period inside ``frame``: the rows of its last ``days`` days (counted
    from the day after its latest row) as labels, the rows before as history."""
    start = window_start(frame, days)
    held = (frame["timestamp"] >= start).to_numpy()
    return frame[~held], frame[held]


def label_window_days(history: pd.DataFrame, labels: pd.DataFrame) -> float | None:
    """The length in days of a label period that follows the whole history in time (a global
    temporal split), or None when the labels interleave with it (per-user hold-outs)."""
    if labels.empty or history.empty or labels["timestamp"].min() < history["timestamp"].max():
        return None
    span = labels["timestamp"].max().normalize() - labels["timestamp"].min().normalize()
    return float(span.days + 1)
