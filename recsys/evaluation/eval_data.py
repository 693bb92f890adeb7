"""Evaluation inputs from a processed dataset: history and ground-truth matrices, cold flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.schema import default_history
from recsys.errors import ConfigError, DataError
from recsys.evaluation.protocols import DatasetLike

REQUIRED = ("user_idx", "item_idx", "timestamp", "positive")


@dataclass(frozen=True)
class EvalData:
    """Everything a method and the metrics need for one evaluated split.

    ``history``: positive interaction counts ``[n_users, n_items]`` of the splits before the
    evaluated one (:func:`recsys.data.schema.default_history` unless configured: what the
    exclusion rule removes from rankings and, by default, what methods learn from); ``truth``:
    positives of the evaluated split; ``history_frame``: those history positives as rows (for
    time-aware baselines); ``users``: the evaluated users (rows of ``truth`` with a positive).
    ``fit`` / ``fit_frame`` / ``fit_names``: what methods are fitted on and score users from,
    the history unless ``fit_splits`` were given (RecBole fits on train only and scores test
    users from their train rows while excluding train + valid items).
    """

    split: str
    history_splits: tuple[str, ...]
    n_users: int
    n_items: int
    history: sp.csr_matrix
    history_frame: pd.DataFrame
    truth: sp.csr_matrix
    users: np.ndarray
    user_table: pd.DataFrame
    fingerprint: str | None = None  # the dataset manifest's data_fingerprint
    manifest_path: str = ""
    fit_splits: tuple[str, ...] = ()  # empty: methods fit on the history
    fit_matrix: sp.csr_matrix | None = None
    fit_rows: pd.DataFrame | None = None

    @property
    def fit(self) -> sp.csr_matrix:
        """Positive counts methods are fitted on (the history unless ``fit_splits``)."""
        return self.history if self.fit_matrix is None else self.fit_matrix

    @property
    def fit_frame(self) -> pd.DataFrame:
        """Rows of :attr:`fit` (popularity, time-aware baselines)."""
        return self.history_frame if self.fit_rows is None else self.fit_rows

    @property
    def fit_names(self) -> tuple[str, ...]:
        """The splits of :attr:`fit`."""
        return self.fit_splits or self.history_splits

    @cached_property
    def item_user_counts(self) -> np.ndarray:
        """Distinct history users per item (novelty); computed once, on first use."""
        counts = np.asarray((self.history > 0).sum(axis=0)).ravel()
        counts.flags.writeable = False  # shared by every reader of the cache
        return counts

    @cached_property
    def cold_items(self) -> np.ndarray:
        """Items with no history positive; computed once, on first use."""
        cold = self.item_user_counts == 0
        cold.flags.writeable = False  # shared by every reader of the cache
        return cold

    @property
    def cold_users(self) -> np.ndarray:
        """Users with no history positive."""
        return np.diff(self.history.indptr) == 0

    @cached_property
    def n_history_users(self) -> int:
        """Users with a history positive (novelty); computed once, on first use."""
        return int((~self.cold_users).sum())

    @cached_property
    def item_gram(self) -> sp.csr_matrix:
        """Co-occurrence counts of the binarised :attr:`fit` (:func:`item_gram`); computed once,
        shared by the item-item baselines and every trial that refits them."""
        return item_gram(self.fit)

    @cached_property
    def user_truth(self) -> sp.csr_matrix:
        """``truth`` rows of the evaluated ``users``, in their order; computed once, read-only
        by convention (shared by every method and slice)."""
        return self.truth[self.users]


def interaction_matrix(frame: pd.DataFrame, n_users: int, n_items: int,
                       weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Sum of ``weights`` (counts of rows when None, float32) per (user_idx, item_idx), as CSR
    with sorted indices."""
    data = np.ones(len(frame), dtype=np.float32) if weights is None else weights
    rows = frame["user_idx"].to_numpy(np.int64)
    cols = frame["item_idx"].to_numpy(np.int64)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(n_users, n_items))
    mat.sum_duplicates()
    mat.sort_indices()
    return mat


def item_gram(history: sp.spmatrix) -> sp.csr_matrix:
    """``X'X`` of the binarised ``history`` X: users who interacted with both items (float32
    CSR, exact up to 2**24 users; the diagonal holds each item's user count)."""
    x = sp.csr_matrix(history > 0, dtype=np.float32)
    gram = (x.T @ x).tocsr()
    gram.sort_indices()
    return gram


def prepare_eval_data(
    dataset: DatasetLike, split: str, history_splits: Sequence[str] | None = None,
    fit_splits: Sequence[str] | None = None,
) -> EvalData:
    """Build :class:`EvalData` for ``split`` with positives of ``history_splits`` as history
    and, when given, of ``fit_splits`` (a subset of the history) as what methods fit on."""
    hist_names = tuple(history_splits) if history_splits else default_history(split)
    if split in hist_names:
        raise ConfigError(f"eval.history_splits {list(hist_names)} must not contain {split!r}")
    fit_names = tuple(fit_splits) if fit_splits else hist_names
    if not set(fit_names) <= set(hist_names):
        raise ConfigError(f"eval.fit_splits {list(fit_names)} must be among the history splits "
                          f"{list(hist_names)}", column="eval.fit_splits")
    n_users, n_items = len(dataset.users), len(dataset.items)
    frames = {name: _positives(getattr(dataset, name), name, dataset, n_users, n_items)
              for name in {*hist_names, split}}
    history_frame = pd.concat([frames[n] for n in hist_names], ignore_index=True)
    if history_frame.empty:
        raise DataError(f"no positive interactions in {list(hist_names)}", file=str(dataset.path))
    truth = interaction_matrix(frames[split], n_users, n_items)
    truth.data[:] = 1.0
    users = np.flatnonzero(np.diff(truth.indptr) > 0).astype(np.int64)
    if len(users) == 0:
        raise DataError(f"split {split!r} has no positive interactions to evaluate",
                        file=str(dataset.path / f"{split}.parquet"))
    fit_rows = None if fit_names == hist_names else pd.concat(
        [frames[n] for n in fit_names], ignore_index=True)
    return EvalData(
        split=split,
        history_splits=hist_names,
        n_users=n_users,
        n_items=n_items,
        history=interaction_matrix(history_frame, n_users, n_items),
        history_frame=history_frame,
        truth=truth,
        users=users,
        user_table=dataset.users,
        fingerprint=dataset.manifest.get("data_fingerprint"),
        manifest_path=str(dataset.path / "manifest.json"),
        fit_splits=fit_names if fit_rows is not None else (),
        fit_matrix=None if fit_rows is None else interaction_matrix(fit_rows, n_users, n_items),
        fit_rows=fit_rows,
    )


def _positives(
    frame: pd.DataFrame, name: str, dataset: DatasetLike, n_users: int, n_items: int
) -> pd.DataFrame:
    file = str(dataset.path / f"{name}.parquet")
    for col in REQUIRED:
        if col not in frame.columns:
            raise DataError("missing column", file=file, column=col)
    pos = frame[frame["positive"].astype(bool)]
    for col, bound in (("user_idx", n_users), ("item_idx", n_items)):
        values = pos[col].to_numpy()
        bad = np.flatnonzero((values < 0) | (values >= bound))
        if len(bad):
            raise DataError(f"index {values[bad[0]]} outside 0..{bound - 1}", file=file,
                            row=int(pos.index[bad[0]]), column=col)
    return pos[list(REQUIRED)]
