"""Train/validation/test splits: global temporal cutoff, leave-last-basket-out per user, random,
and per-user random (RecBole's ratio split with random order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import SPLITS
from recsys.errors import ConfigError, DataError

SplitFrames = dict[str, pd.DataFrame]


_TIMED = ("temporal", "leave_last_basket")  # kinds that order interactions by time


def split_interactions(
    inter: pd.DataFrame,
    cfg: Mapping[str, Any],
    *,
    positive_events: Sequence[str] = ("purchase",),
    source_file: str | None = None,
) -> tuple[SplitFrames, dict[str, Any]]:
    """Split by ``cfg.kind``; returns the three frames and a description for the manifest.

    A time-based kind on interactions without timestamps is a :class:`ConfigError` naming
    ``split.kind`` and ``source_file``."""
    kind = cfg.get("kind")
    if kind in _TIMED and inter["timestamp"].isna().all():
        raise ConfigError(
            f"split.kind={kind} needs timestamps but the interactions have none; "
            "use split=per_user_random or split=random",
            file=source_file,
        )
    if kind == "temporal":
        labels, info = _temporal(inter, cfg)
    elif kind == "leave_last_basket":
        labels, info = _leave_last(inter, cfg)
    elif kind == "random":
        labels, info = _random(inter, cfg)
    elif kind == "per_user_random":
        labels, info = _per_user_random(inter, cfg, inter["event"].isin(list(positive_events)).to_numpy())
    else:
        raise ConfigError(
            f"split.kind: unknown {kind!r} (temporal, leave_last_basket, random, per_user_random)"
        )
    frames = {name: inter[labels == name] for name in SPLITS}
    if len(frames["train"]) == 0:
        raise DataError(f"split {kind!r} leaves the training split empty; check the split settings")
    info = {"kind": kind, **info, **{f"{k}_rows": len(v) for k, v in frames.items()}}
    return frames, info


def _temporal(inter: pd.DataFrame, cfg: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    ts = inter["timestamp"]
    end = ts.max().normalize() + pd.Timedelta(days=1)
    test_start = pd.Timestamp(cfg["test_start"]) if cfg.get("test_start") else end - pd.Timedelta(
        days=int(cfg["test_days"])
    )
    val_start = test_start - pd.Timedelta(days=int(cfg["val_days"]))
    labels = np.where(ts >= test_start, "test", np.where(ts >= val_start, "val", "train"))
    return labels, {"val_start": str(val_start), "test_start": str(test_start)}


def _leave_last(inter: pd.DataFrame, cfg: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    basket = cfg["basket"]
    if basket == "day":
        key = inter["timestamp"].dt.normalize()
    elif basket == "timestamp":
        key = inter["timestamp"]
    else:
        raise ConfigError(f"split.basket: unknown {basket!r} (day, timestamp)")
    frame = pd.DataFrame({"u": inter["user_id"].to_numpy(), "k": key.to_numpy()})
    by_user = frame.groupby("u")["k"]
    rank = by_user.rank(method="dense", ascending=False).to_numpy()
    n_baskets = by_user.transform("nunique").to_numpy()
    holdout = 2 if cfg["val"] else 1
    eligible = n_baskets >= holdout + int(cfg["min_train_baskets"])
    labels = np.full(len(inter), "train", dtype=object)
    labels[eligible & (rank == 1)] = "test"
    if cfg["val"]:
        labels[eligible & (rank == 2)] = "val"
    return labels.astype(str), {"basket": basket, "users_held_out": len(np.unique(frame["u"][eligible]))}


def _random(inter: pd.DataFrame, cfg: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(int(cfg["seed"]))
    u = rng.random(len(inter))
    test, val = float(cfg["test_frac"]), float(cfg["val_frac"])
    labels = np.where(u < test, "test", np.where(u < test + val, "val", "train"))
    return labels, {"seed": int(cfg["seed"]), "test_frac": test, "val_frac": val}


def _per_user_random(
    inter: pd.DataFrame, cfg: Mapping[str, Any], positive: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each user's positives, in a seeded random order, cut by ``cfg.ratios`` rounded per user as
    RecBole's ``split_by_ratio``; the user's non-positive events form a group of their own."""
    ratios = _ratios(cfg.get("ratios"))
    seed = int(cfg["seed"])
    n = len(inter)
    users = pd.factorize(inter["user_id"], sort=False)[0].astype(np.int64)
    group = users * 2 + positive.astype(np.int64)
    order = np.lexsort((np.random.default_rng(seed).permutation(n), group))
    _, start, size = np.unique(group[order], return_index=True, return_counts=True)
    counts = _recbole_counts(size, ratios)
    rank = np.arange(n) - np.repeat(start, size)  # position inside the user's shuffled group
    train_end = np.repeat(counts[:, 0], size)
    val_end = train_end + np.repeat(counts[:, 1], size)
    labels = np.empty(n, dtype=object)
    labels[order] = np.where(rank < train_end, "train", np.where(rank < val_end, "val", "test"))
    info = {"seed": seed, "ratios": [float(r) for r in cfg["ratios"]], "group_by": "user, positive",
            "users": int(users.max() + 1) if n else 0}
    return labels.astype(str), info


def _ratios(raw: Any) -> np.ndarray:
    try:
        values = [float(r) for r in raw]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or min(values) < 0 or sum(values) <= 0:
        raise ConfigError(f"split.ratios must be three non-negative numbers (train, val, test), got {raw!r}")
    total = sum(values)  # normalised in Python floats, as RecBole does
    return np.asarray([v / total for v in values], dtype=np.float64)


def _recbole_counts(tot: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Rows per part for groups of ``tot`` rows, as RecBole's ``_calcu_split_ids``: every part but
    the first gets ``int(ratio * tot)``; then, from the last part back, a part whose share is
    strictly between 0 and 1 row gets one row taken from the first while the first keeps more
    than one; the first part gets the rest."""
    share = ratios[None, :] * tot[:, None].astype(np.float64)
    counts = np.floor(share).astype(np.int64)
    counts[:, 0] = tot - counts[:, 1:].sum(axis=1)
    for part in range(len(ratios) - 1, 0, -1):
        bump = (counts[:, 0] > 1) & (share[:, part] > 0) & (share[:, part] < 1)
        counts[:, part] += bump
        counts[:, 0] -= bump
    return counts
