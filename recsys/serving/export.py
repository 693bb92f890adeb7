"""``recsys-export``: embeddings, FAISS index, user tower and encoders into a serving bundle."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

import recsys
from recsys.data.atomic import atomic_directory
from recsys.data.fingerprint import config_hash
from recsys.data.fitted import FittedParams
from recsys.data.schema import default_history
from recsys.errors import DataError, ModelError
from recsys.evaluation.baselines.popularity import popularity_scores
from recsys.evaluation.eval_data import interaction_matrix
from recsys.evaluation.protocols import DatasetLike
from recsys.retrieval import tuning
from recsys.retrieval.embeddings import EmbeddingModel, ExportedEmbeddings, export_embeddings
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.similarity import prepare
from recsys.serving import bundle as B
from recsys.serving import torchscript
from recsys.serving.user_features import UserFeatureEncoder, user_encoder

log = logging.getLogger(__name__)
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
    dataset: DatasetLike,
    spec: IndexSpec,
    out_dir: Path,
    settings: ExportSettings,
    config: Mapping[str, Any],
) -> Path:
    """Write a serving bundle for ``model`` trained on ``dataset`` into ``out_dir`` atomically;
    ``model``'s user vectors must read ``settings.history`` (see :class:`ExportSettings`)."""
    users = dataset.users.sort_values("user_idx").reset_index(drop=True)
    items = dataset.items.sort_values("item_idx").reset_index(drop=True)
    emb = export_embeddings(model, users["user_idx"].to_numpy(np.int64), settings.batch_size)
    if emb.items.shape[0] != len(items):
        raise ModelError(f"model embeds {emb.items.shape[0]} items, the dataset has {len(items)}")
    index = ItemIndex.build(emb.items, spec, emb.similarity)
    user_vectors = prepare(emb.users, emb.similarity)
    recall = _ann_recall(index, emb, user_vectors, spec)
    log.info("index %s: ANN recall@%d = %.4f with %s", index.factory, recall.k, recall.recall,
             recall.params)
    tower = _script_tower(model) if settings.user_tower else None
    with atomic_directory(Path(out_dir)) as tmp:
        (tmp / B.INDEX).write_bytes(index.to_bytes())
        _item_table(items, settings.item_columns).to_parquet(tmp / B.ITEMS, index=False)
        users[["user_idx", "user_id"]].to_parquet(tmp / B.USERS, index=False)
        np.save(tmp / B.USER_EMBEDDINGS, user_vectors)
        sp.save_npz(tmp / B.HISTORY, _history(dataset, settings.history, len(users), len(items)))
        train = dataset.train[dataset.train["positive"].astype(bool)]
        np.save(tmp / B.POPULARITY, popularity_scores(train, len(items)).astype(np.float32))
        tower_meta = None
        if tower is not None:
            encoder = user_encoder(_fitted(dataset), _features(dataset),
                                   items["item_id"].astype(str).tolist(), _tower_shapes(model))
            _check_tower(tower, encoder, emb.dim)
            torchscript.save(tower, tmp / B.USER_TOWER)
            (tmp / B.USER_ENCODER).write_text(json.dumps(encoder.to_dict(), indent=2))
            tower_meta = {"format": "torchscript", "file": B.USER_TOWER,
                          "encoder": B.USER_ENCODER}
        names = sorted(p.name for p in tmp.iterdir())
        manifest = _manifest(dataset, emb, index, recall, tower_meta, config, len(users))
        manifest["history_splits"] = list(settings.history)
        manifest["files"] = B.checksums(tmp, names)
        (tmp / B.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return Path(out_dir)


def _ann_recall(
    index: ItemIndex, emb: ExportedEmbeddings, user_vectors: np.ndarray, spec: IndexSpec
) -> tuning.RecallReport:
    """ANN recall on user queries (``user_vectors``: prepared), or on item queries if no users."""
    items = prepare(emb.items, emb.similarity)
    return tuning.calibrate(index, items, user_vectors if len(user_vectors) else items, spec)


def _item_table(items: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    raw = [c for c in items.columns if not c.endswith(ENCODED_SUFFIXES)
           and c not in ("item_idx", "item_id")]
    keep = raw if columns is None else [c for c in columns if c in items.columns]
    table = items[["item_idx", "item_id", *keep]].copy()
    table["item_id"] = table["item_id"].astype(str)
    return table


def _history(dataset: DatasetLike, splits: Sequence[str], n_users: int, n_items: int
             ) -> sp.csr_matrix:
    frames = [getattr(dataset, s) for s in splits]
    pos = pd.concat([f[f["positive"].astype(bool)][["user_idx", "item_idx"]] for f in frames])
    mat = interaction_matrix(pos, n_users, n_items)
    mat.data[:] = 1.0
    return mat


def _fitted(dataset: DatasetLike) -> FittedParams:
    """The statistics the data stage fitted on the training split (``fitted.json``)."""
    fitted = getattr(dataset, "fitted", None)
    if not isinstance(fitted, FittedParams):
        raise DataError("dataset has no fitted statistics (fitted.json); rerun recsys-data",
                        file=str(dataset.path))
    return fitted


def _features(dataset: DatasetLike) -> dict[str, Any]:
    return dict(getattr(dataset, "features", {}) or {})


def _tower_shapes(model: EmbeddingModel) -> dict[str, int]:
    """History / social input shapes of the user tower, from the model's feature schema
    (``model.schema``, ``model.net.schema`` or ``model.config["schema"]``)."""
    net = getattr(model, "net", None)
    config = getattr(model, "config", None)
    candidates = [getattr(model, "schema", None), getattr(net, "schema", None),
                  config.get("schema") if isinstance(config, Mapping) else None]
    schema: Any = next((c for c in candidates if c is not None), None)
    if schema is None:
        return {}
    if not isinstance(schema, Mapping):
        schema = {k: getattr(schema, k, 0) for k in ("history_len", "social_len", "social_dim")}
    return {k: int(schema.get(k, 0) or 0) for k in ("history_len", "social_len", "social_dim")}


def _script_tower(model: EmbeddingModel) -> torch.jit.ScriptModule | None:
    make = getattr(model, "user_tower_for_export", None)
    module = make() if make is not None else None
    if module is None:
        log.info("model has no user tower to export; new users get the popularity fallback")
        return None
    if not isinstance(module, nn.Module):
        raise ModelError(f"user tower cannot be exported to TorchScript: got {type(module)}")
    return torchscript.script(module)


def _check_tower(tower: torch.jit.ScriptModule, encoder: UserFeatureEncoder, dim: int) -> None:
    with torch.inference_mode():
        try:
            out = tower(*encoder.encode([{}]))
        except Exception as err:  # TorchScript raises many types
            raise ModelError(f"user tower rejects encoded features: {err}") from None
    if tuple(out.shape) != (1, dim):
        raise ModelError(f"user tower outputs shape {tuple(out.shape)}, items have dimension {dim}")


def _manifest(
    dataset: DatasetLike,
    emb: ExportedEmbeddings,
    index: ItemIndex,
    recall: tuning.RecallReport,
    tower: dict[str, str] | None,
    config: Mapping[str, Any],
    n_users: int,
) -> dict[str, Any]:
    data = dataset.manifest
    return {
        "format": B.FORMAT,
        "format_version": B.FORMAT_VERSION,
        "package_version": recsys.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config_hash": config_hash(config),
        "data_fingerprint": data.get("data_fingerprint"),
        "dataset": data.get("name"),
        "embedding_dim": emb.dim,
        "similarity": emb.similarity,
        "metric": index.metric,
        "index": {"factory": index.factory, "params": dict(index.params), "ntotal": index.ntotal},
        "ann_recall": recall.to_dict(),
        "n_items": index.ntotal,
        "n_users": n_users,
        "user_tower": tower,
    }
