"""Dense feature tables built once from a processed dataset (numpy, aligned to user/item idx).

Training positives are the rows of train.parquet with ``positive``; they are sorted by user and
time into one sequence, so a training example is just a position ``p`` in it: its user, item,
time and the purchase history *before its basket* (no leakage of the target or later baskets).
On data without timestamps (manifest ``has_timestamps: false``) there is no "before": a training
example's history is up to ``history_len`` of the user's *other* training positives, a fresh
random subset each time it is drawn (never the target; see ``FeatureStore.train_inputs``).
Evaluated users read a separate history per evaluated split (``eval_history``): by default the
training positives for validation and train + validation positives for the test split, i.e. every
purchase before that split's period (as the repurchase baseline sees them), never the split itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.data import ProcessedDataset
from recsys.data.schema import SPLITS, default_history
from recsys.errors import ConfigError, DataError
from recsys.models.inputs import FeatureSchema
from recsys.training.image_inputs import ImageArrays

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class HistorySeq:
    """Positives of some splits sorted by user and time (CSR over user_idx), for evaluation."""

    splits: tuple[str, ...]
    items: np.ndarray  # [N] item_idx
    days: np.ndarray  # [N] days since the first training positive
    offsets: np.ndarray  # [n_users + 1]
    cutoff_days: float  # end of the history period (same origin as ``days``)


@dataclass(frozen=True)
class EvalTargets:
    """Positives of one split per evaluated user (CSR over ``users``)."""

    users: np.ndarray  # [U] user_idx with at least one positive
    offsets: np.ndarray  # [U + 1]
    items: np.ndarray  # [offsets[-1]] item_idx


@dataclass(frozen=True)
class FeatureTables:
    """Every tensor the feature store holds; see the module doc for the sequence layout."""

    schema: FeatureSchema
    user_bucket: np.ndarray
    user_cat: np.ndarray
    user_num: np.ndarray
    seq_items: np.ndarray
    seq_users: np.ndarray
    seq_days: np.ndarray
    seq_basket_start: np.ndarray
    user_offsets: np.ndarray
    social_features: np.ndarray
    social_start: np.ndarray
    social_count: np.ndarray
    item_bucket: np.ndarray
    item_cat: np.ndarray
    item_multi: np.ndarray
    item_num: np.ndarray
    item_image: np.ndarray
    item_image_mask: np.ndarray
    item_count: np.ndarray
    eval_history: dict[str, HistorySeq] = field(default_factory=dict)
    fit_splits: tuple[str, ...] = ("train",)  # the splits of the training sequence
    timestamped: bool = True  # False: training histories are the user's other positives

    @property
    def n_train(self) -> int:
        return int(self.seq_items.shape[0])

    @property
    def cold_items(self) -> np.ndarray:
        """Items without any training positive."""
        return np.asarray(self.item_count == 0)


def _encoded(df: pd.DataFrame, names: list[str], suffix: str, source: str) -> list[str]:
    cols = [f"{n}{suffix}" for n in names]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError("features.json names a column the table lacks", file=source,
                        column=missing[0])
    return cols


def _vocab_size(ds: ProcessedDataset, table: str, name: str, values: np.ndarray) -> int:
    vocab = ds.vocabs.get(f"{table}.{name}", ds.vocabs.get(name, []))
    top = int(values.max()) + 1 if values.size else 1
    return max(len(vocab), top, 1)


def _multi_matrix(column: pd.Series, max_len: int) -> np.ndarray:
    out = np.zeros((len(column), max_len), dtype=np.int64)
    for row, values in enumerate(column.to_numpy()):
        if values is None or (isinstance(values, float) and np.isnan(values)):
            continue
        vals = np.asarray(values, dtype=np.int64)[:max_len]
        out[row, : len(vals)] = vals
    return out


def check_eval_history(eval_history: Mapping[str, Sequence[str]] | None
                       ) -> dict[str, tuple[str, ...]]:
    """``{evaluated split: history splits}``, refusing any history that is not strictly earlier
    than the evaluated split (that would leak its targets)."""
    out = {split: default_history(split) for split in ("val", "test")}
    for split, names in (eval_history or {}).items():
        hist = tuple(str(n) for n in names)
        if split not in ("val", "test"):
            raise ConfigError(f"datamodule.eval_history: unknown split {split!r} (val or test)",
                              column="eval_history")
        later = [n for n in hist if n not in SPLITS or SPLITS.index(n) >= SPLITS.index(split)]
        if not hist or later:
            raise ConfigError(f"datamodule.eval_history.{split} must list splits before "
                              f"{split!r}, got {list(hist)}", column="eval_history")
        out[split] = hist
    return out


def check_fit_splits(fit_splits: Sequence[str]) -> tuple[str, ...]:
    """``datamodule.fit_splits`` as a tuple: train, optionally followed by val (a refit)."""
    fit = tuple(str(s) for s in fit_splits)
    if fit not in (("train",), ("train", "val")):
        raise ConfigError(f"datamodule.fit_splits must be [train] or [train, val] (a refit), got "
                          f"{list(fit)}", column="fit_splits")
    return fit


def _sorted_positives(ds: ProcessedDataset, splits: tuple[str, ...], n_users: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user_idx, item_idx, timestamp in ns) of the positives of ``splits``, sorted by user and
    time (stable: ties keep the order of ``splits`` and of the rows)."""
    frames = []
    for name in splits:
        df = ds.split(name)
        df = df[df["positive"].astype(bool)] if len(df) else df
        users = df["user_idx"].to_numpy(np.int64)
        if len(users) and (users.min() < 0 or users.max() >= n_users):
            raise DataError("user_idx outside users.parquet", file=f"{ds.path}/{name}.parquet",
                            column="user_idx")
        if len(df):
            frames.append(df)
    pos = pd.concat(frames, ignore_index=True) if frames else ds.train.iloc[:0]
    pos = pos.sort_values(["user_idx", "timestamp"], kind="stable")
    ts = pd.to_datetime(pos["timestamp"]).to_numpy("datetime64[ns]").astype(np.int64)
    return pos["user_idx"].to_numpy(np.int64), pos["item_idx"].to_numpy(np.int64), ts


def _history(splits: tuple[str, ...], users: np.ndarray, items: np.ndarray, ts: np.ndarray,
             n_users: int, origin_ns: int) -> HistorySeq:
    days = (ts - origin_ns) / DAY_NS
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(offsets, users + 1, 1)
    return HistorySeq(splits=splits, items=items, days=days, offsets=np.cumsum(offsets),
                      cutoff_days=float(days.max()) if len(days) else 0.0)


def history_seq(ds: ProcessedDataset, splits: tuple[str, ...], n_users: int, origin_ns: int
                ) -> HistorySeq:
    """Positives of ``splits`` per user in time order; days count from ``origin_ns``."""
    return _history(splits, *_sorted_positives(ds, splits, n_users), n_users, origin_ns)


def _basket_starts(users: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per position of a user/time-sorted sequence, the first position of its basket (same
    user, same timestamp)."""
    new_basket = np.ones(len(users), dtype=bool)
    new_basket[1:] = (users[1:] != users[:-1]) | (ts[1:] != ts[:-1])
    return np.maximum.accumulate(np.where(new_basket, np.arange(len(users)), 0)).astype(np.int64)


def build_tables(
    ds: ProcessedDataset,
    images: ImageArrays | None,
    history_len: int,
    social_len: int,
    user_buckets: int,
    multi_hot_len: int,
    eval_history: Mapping[str, Sequence[str]] | None = None,
    fit_splits: Sequence[str] = ("train",),
    item_id_min_count: int = 1,
) -> FeatureTables:
    """All dense tables of ``ds``; ``images`` adds product and (consented) social images;
    ``eval_history`` names the splits evaluated users read as history (see the module doc);
    ``fit_splits`` the splits whose positives are trained on (train; train + val to refit);
    items with fewer than ``item_id_min_count`` training positives get the cold id bucket 0
    (their vector comes from their content), in training and at inference alike."""
    users, items = ds.users.sort_values("user_idx"), ds.items.sort_values("item_idx")
    n_users, n_items = len(users), len(items)
    root = str(ds.path)
    fit = check_fit_splits(fit_splits)
    seq_users, seq_items, seq_ts = _sorted_positives(ds, fit, n_users)
    if not len(seq_ts):
        raise DataError("the training split has no positive interactions; nothing to train on",
                        file=f"{root}/train.parquet", column="positive")
    origin = int(seq_ts.min())
    train_seq = _history(fit, seq_users, seq_items, seq_ts, n_users, origin)
    seq = {"seq_items": train_seq.items, "seq_users": seq_users, "seq_days": train_seq.days,
           "seq_basket_start": _basket_starts(seq_users, seq_ts),
           "user_offsets": train_seq.offsets}
    # a history of the training split alone *is* the training sequence: share its arrays
    histories = {split: train_seq if names == fit
                 else history_seq(ds, names, n_users, origin)
                 for split, names in check_eval_history(eval_history).items()}
    for hist in (train_seq, *(h for h in histories.values() if h is not train_seq)):
        if len(hist.items) and (hist.items.min() < 0 or hist.items.max() >= n_items):
            raise DataError("item_idx outside items.parquet",
                            file=f"{root}/{hist.splits[-1]}.parquet", column="item_idx")
    feats_u, feats_i = ds.features.get("users", {}), ds.features.get("items", {})
    ucat = users[_encoded(users, feats_u.get("categorical", []), "_idx", root)].to_numpy(np.int64)
    unum = users[_encoded(users, feats_u.get("numeric", []), "_z", root)].to_numpy(np.float32)
    icat = items[_encoded(items, feats_i.get("categorical", []), "_idx", root)].to_numpy(np.int64)
    inum = items[_encoded(items, feats_i.get("numeric", []), "_z", root)].to_numpy(np.float32)
    multi_cols = _encoded(items, feats_i.get("multi_hot", []), "_multi", root)
    multi = np.stack([_multi_matrix(items[c], multi_hot_len) for c in multi_cols], axis=1) \
        if multi_cols else np.zeros((n_items, 0, 0), dtype=np.int64)
    count = np.bincount(seq["seq_items"], minlength=n_items).astype(np.float64)
    has_hist = np.diff(seq["user_offsets"]) > 0
    hashed = pd.util.hash_pandas_object(users["user_id"].astype(str), index=False).to_numpy()
    bucket = (hashed % np.uint64(max(user_buckets - 1, 1))).astype(np.int64) + 1
    if images is not None:
        consent = users["social_image_consent"].fillna(False).to_numpy(bool) \
            if "social_image_consent" in users else np.zeros(n_users, dtype=bool)
        offs = images.user_image_offsets
        social_count = np.minimum(np.diff(offs), social_len) * consent
        owner = np.repeat(np.arange(n_users), np.diff(offs))
        social = images.user_image_features * consent[owner, None]  # no features without consent
        image, image_mask = images.item_features, images.item_mask
    else:
        social_count = np.zeros(n_users, dtype=np.int64)
        offs = np.zeros(n_users + 1, dtype=np.int64)
        social = np.zeros((0, 0), dtype=np.float32)
        image, image_mask = np.zeros((n_items, 0), np.float32), np.zeros(n_items, bool)
    dim = int(image.shape[1])
    schema = FeatureSchema(
        n_users=n_users, n_items=n_items,
        user_cat_sizes=[_vocab_size(ds, "users", n, ucat[:, i])
                        for i, n in enumerate(feats_u.get("categorical", []))],
        user_num=int(unum.shape[1]),
        item_cat_sizes=[_vocab_size(ds, "items", n, icat[:, i])
                        for i, n in enumerate(feats_i.get("categorical", []))],
        item_multi_sizes=[_vocab_size(ds, "items", n, multi[:, i])
                          for i, n in enumerate(feats_i.get("multi_hot", []))],
        item_multi_len=int(multi.shape[2]), item_num=int(inum.shape[1]),
        image_dim=dim, social_dim=dim if images is not None else 0,
        history_len=history_len, social_len=social_len if images is not None else 0,
    )
    return FeatureTables(
        schema=schema, user_bucket=np.where(has_hist, bucket, 0), user_cat=ucat,
        user_num=np.nan_to_num(unum),
        social_features=np.nan_to_num(social), social_start=offs[:-1].astype(np.int64),
        social_count=social_count.astype(np.int64),
        item_bucket=np.where(count >= max(item_id_min_count, 1), np.arange(1, n_items + 1), 0),
        item_cat=icat,
        item_multi=multi, item_num=np.nan_to_num(inum), item_image=np.nan_to_num(image),
        item_image_mask=image_mask, item_count=count, eval_history=histories,
        timestamped=bool(ds.manifest.get("has_timestamps", True)), fit_splits=fit, **seq,
    )


def eval_targets(split: pd.DataFrame, n_items: int) -> EvalTargets:
    """Positives of a validation or test split, grouped by user."""
    pos = split[split["positive"].astype(bool)] if len(split) else split
    pos = pos[(pos["item_idx"] >= 0) & (pos["item_idx"] < n_items)]
    pos = pos.drop_duplicates(["user_idx", "item_idx"]).sort_values(["user_idx", "item_idx"])
    users, counts = np.unique(pos["user_idx"].to_numpy(np.int64), return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return EvalTargets(users=users, offsets=offsets, items=pos["item_idx"].to_numpy(np.int64))
