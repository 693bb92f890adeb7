"""Export: a trained model's :class:`~recsys.retrieval.converter.RetrievalModel` and the
dataset's tables written as a serving bundle (the one meaning of "export" in recsys)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

import recsys
from recsys.data.atomic import atomic_directory
from recsys.data.fingerprint import config_hash
from recsys.data.schema import default_history
from recsys.retrieval import torchscript
from recsys.retrieval.converter import DatasetTables, RetrievalModel, convert
from recsys.retrieval.embeddings import EmbeddingModel
from recsys.retrieval.index_spec import IndexSpec
from recsys.serving import bundle as B

ENCODED_SUFFIXES = ("_idx", "_multi", "_z", "_mm")


@dataclass(frozen=True)
class ExportSettings:
    """Batch size of the embedding export, splits whose purchases count as history, the item
    columns shown with recommendations (None: every raw attribute) and whether to export the
    user tower.

    The history is one definition for the whole bundle: the user vectors read it and
    ``recommend(exclude_purchased=True)`` removes its items; None means the evaluation's test
    history (:func:`recsys.data.schema.default_history`: train + val)."""

    batch_size: int
    history_splits: tuple[str, ...] | None
    item_columns: tuple[str, ...] | None
    user_tower: bool

    @property
    def history(self) -> tuple[str, ...]:
        """The splits whose positives are the bundle's history."""
        return tuple(self.history_splits) if self.history_splits else default_history("test")


def export_bundle(
    model: EmbeddingModel,
    dataset: DatasetTables,
    spec: IndexSpec,
    out_dir: Path,
    settings: ExportSettings,
    config: Mapping[str, Any],
) -> Path:
    """Convert ``model`` (:func:`recsys.retrieval.converter.convert`) and write its bundle;
    ``model``'s user vectors must read ``settings.history`` (see :class:`ExportSettings`)."""
    retrieval = convert(model, dataset, spec, settings.batch_size, settings.user_tower)
    return write_bundle(retrieval, dataset, Path(out_dir), settings, config)


def write_bundle(
    retrieval: RetrievalModel,
    dataset: DatasetTables,
    out_dir: Path,
    settings: ExportSettings,
    config: Mapping[str, Any],
) -> Path:
    """Write ``retrieval`` with the dataset's item table, user ids, history and popularity
    into ``out_dir`` atomically (manifest with checksums last)."""
    users = dataset.users.sort_values("user_idx").reset_index(drop=True)
    items = dataset.items.sort_values("item_idx").reset_index(drop=True)
    with atomic_directory(Path(out_dir)) as tmp:
        (tmp / B.INDEX).write_bytes(retrieval.index.to_bytes())
        _item_table(items, settings.item_columns).to_parquet(tmp / B.ITEMS, index=False)
        users[["user_idx", "user_id"]].to_parquet(tmp / B.USERS, index=False)
        np.save(tmp / B.USER_EMBEDDINGS, retrieval.users)
        np.save(tmp / B.ITEM_EMBEDDINGS, retrieval.items)
        sp.save_npz(tmp / B.HISTORY, _history(dataset, settings.history, len(users), len(items)))
        np.save(tmp / B.POPULARITY, _popularity(dataset.train, len(items)))
        if retrieval.ablations is not None:
            np.savez(tmp / B.ABLATIONS, users=retrieval.ablations.users,
                     items=retrieval.ablations.items)
        tower_meta = None
        if retrieval.tower is not None and retrieval.encoder is not None:
            torchscript.save(retrieval.tower, tmp / B.USER_TOWER)
            (tmp / B.USER_ENCODER).write_text(json.dumps(retrieval.encoder.to_dict(), indent=2))
            tower_meta = {"format": "torchscript", "file": B.USER_TOWER,
                          "encoder": B.USER_ENCODER}
        names = sorted(p.name for p in tmp.iterdir())
        manifest = _manifest(dataset, retrieval, tower_meta, config, len(users))
        manifest["history_splits"] = list(settings.history)
        manifest["files"] = B.checksums(tmp, names)
        (tmp / B.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return Path(out_dir)


def _item_table(items: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    raw = [c for c in items.columns if not c.endswith(ENCODED_SUFFIXES)
           and c not in ("item_idx", "item_id")]
    keep = raw if columns is None else [c for c in columns if c in items.columns]
    table = items[["item_idx", "item_id", *keep]].copy()
    table["item_id"] = table["item_id"].astype(str)
    return table


def _positives(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["positive"].astype(bool)]


def _history(dataset: DatasetTables, splits: Sequence[str], n_users: int, n_items: int
             ) -> sp.csr_matrix:
    """Users x items, 1 where the user has a positive in ``splits`` (sorted CSR)."""
    pos = pd.concat([_positives(getattr(dataset, s)) for s in splits])
    rows, cols = pos["user_idx"].to_numpy(np.int64), pos["item_idx"].to_numpy(np.int64)
    mat = sp.csr_matrix((np.ones(len(pos), np.float32), (rows, cols)), shape=(n_users, n_items))
    mat.sum_duplicates()
    mat.sort_indices()
    mat.data[:] = 1.0
    return mat


def _popularity(train: pd.DataFrame, n_items: int) -> np.ndarray:
    """Fallback ranking of users without a vector: training positives per item, scaled into
    [0, 1) (equal counts rank the lower item index first, the package's tie rule)."""
    counts = np.bincount(_positives(train)["item_idx"].to_numpy(np.int64), minlength=n_items)
    return (counts / (counts.max(initial=0) + 1.0)).astype(np.float32)


def _manifest(
    dataset: DatasetTables,
    retrieval: RetrievalModel,
    tower: dict[str, str] | None,
    config: Mapping[str, Any],
    n_users: int,
) -> dict[str, Any]:
    data: Mapping[str, Any] = getattr(dataset, "manifest", {}) or {}
    index, recall = retrieval.index, retrieval.recall
    return {
        "format": B.FORMAT,
        "format_version": B.FORMAT_VERSION,
        "package_version": recsys.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "config_hash": config_hash(config),
        "data_fingerprint": data.get("data_fingerprint"),
        "dataset": data.get("name"),
        "embedding_dim": retrieval.dim,
        "similarity": retrieval.similarity,
        "metric": index.metric,
        "index": {"factory": index.factory, "params": dict(index.params), "ntotal": index.ntotal},
        "ann_recall": recall.to_dict() if recall is not None else None,
        "n_items": index.ntotal,
        "n_users": n_users,
        "user_tower": tower,
        "explanations": retrieval.ablations is not None,
    }
