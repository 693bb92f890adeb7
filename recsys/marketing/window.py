"""The campaign's time window: a cut-off, the history strictly before it and the holdout after it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsys.data import ProcessedDataset
from recsys.data.schema import SPLITS
from recsys.errors import ConfigError, DataError

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """``history``: every interaction before ``cutoff``; ``holdout``: those in [cutoff, end)."""

    cutoff: pd.Timestamp
    end: pd.Timestamp
    history: pd.DataFrame
    holdout: pd.DataFrame


def all_interactions(dataset: ProcessedDataset) -> pd.DataFrame:
    """Every split of the dataset in one frame (ordered by time)."""
    frames = [dataset.split(s) for s in SPLITS]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if frame.empty:
        raise DataError("the dataset has no interactions", file=str(dataset.path))
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def resolve_cutoff(dataset: ProcessedDataset, cutoff: str | None, holdout_split: str,
                   frame: pd.DataFrame) -> pd.Timestamp:
    """``cutoff`` as a time, or the start of ``holdout_split``; it must leave history before it and
    interactions at or after it (ConfigError naming ``cutoff`` otherwise)."""
    first, last = frame["timestamp"].min(), frame["timestamp"].max()
    if cutoff is None:
        split = dataset.split(holdout_split)
        if split.empty:
            raise ConfigError(f"holdout_split {holdout_split!r} is empty: set cutoff=<date>")
        return pd.Timestamp(split["timestamp"].min())
    try:
        when = pd.Timestamp(cutoff)
    except (ValueError, TypeError):
        raise ConfigError(f"cutoff: not a date: {cutoff!r}") from None
    if not first < when <= last:
        raise ConfigError(f"cutoff {when} is outside the data ({first} .. {last}): it needs "
                          "history before it and purchases after it")
    return when


def make_window(dataset: ProcessedDataset, cutoff: str | None, holdout_split: str,
                horizon_days: float | None) -> Window:
    """History before the cut-off and the holdout from it to ``horizon_days`` later (null: the end
    of the data)."""
    frame = all_interactions(dataset)
    when = resolve_cutoff(dataset, cutoff, holdout_split, frame)
    end = (when + horizon_days * DAY if horizon_days is not None
           else frame["timestamp"].max() + pd.Timedelta(seconds=1))
    ts = frame["timestamp"]
    return Window(when, end, frame[ts < when].reset_index(drop=True),
                  frame[(ts >= when) & (ts < end)].reset_index(drop=True))
