"""Train/validation/test splits: global temporal cutoff, leave-last-basket-out per user, random."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import SPLITS
from recsys.errors import ConfigError, DataError

SplitFrames = dict[str, pd.DataFrame]


def split_interactions(inter: pd.DataFrame, cfg: Mapping[str, Any]) -> tuple[SplitFrames, dict[str, Any]]:
    """Split by ``cfg.kind``; returns the three frames and a description for the manifest."""
    kind = cfg.get("kind")
    if kind == "temporal":
        labels, info = _temporal(inter, cfg)
    elif kind == "leave_last_basket":
        labels, info = _leave_last(inter, cfg)
    elif kind == "random":
        labels, info = _random(inter, cfg)
    else:
        raise ConfigError(f"split.kind: unknown {kind!r} (temporal, leave_last_basket, random)")
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
