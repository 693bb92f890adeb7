"""The one converter from a trained model to its retrieval model.

In the spirit of TorchRec's training-to-retrieval converter: :func:`load_checkpoint` opens a
``recsys-train`` checkpoint as an :class:`EmbeddingModel` (evaluation and export both use it),
and :func:`convert` turns any such model into a :class:`RetrievalModel`: item vectors, the FAISS
index with its measured ANN recall, known users' vectors, the user encoder (scripted tower plus
feature encoder) and, for explanations, the vectors with each signal removed. A serving bundle is
a :class:`RetrievalModel` written to disk with the dataset's tables (``recsys.serving.export``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys.data.fitted import FittedParams
from recsys.devices import resolve_device
from recsys.errors import DataError, ModelError
from recsys.retrieval import torchscript, tuning
from recsys.retrieval.embeddings import EmbeddingModel, read_embeddings
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.similarity import prepare
from recsys.retrieval.user_features import UserFeatureEncoder, user_encoder

log = logging.getLogger(__name__)
# user signals removed together for each stored ablation (the item side only has the image)
USER_DROPS: tuple[tuple[str, ...], ...] = (("behaviour",), ("social",), ("behaviour", "social"))


@runtime_checkable
class ExplainableModel(Protocol):
    """A model that can embed users and items with signals removed (additive explanations)."""

    def ablated_user_embeddings(self, user_idx: np.ndarray, drop: Collection[str],
                                batch_size: int = ...) -> np.ndarray: ...

    def ablated_item_embeddings(self, drop: Collection[str], batch_size: int = ...
                                ) -> np.ndarray: ...


@runtime_checkable
class TowerModel(Protocol):
    """A model whose user tower can be exported (new users are embedded from features)."""

    def user_tower_for_export(self) -> nn.Module | None: ...


class DatasetTables(Protocol):
    """What the converter reads of a processed dataset."""

    @property
    def users(self) -> pd.DataFrame: ...

    @property
    def items(self) -> pd.DataFrame: ...

    @property
    def train(self) -> pd.DataFrame: ...

    @property
    def path(self) -> Path: ...


@dataclass(frozen=True)
class Ablations:
    """Prepared vectors with signals removed: ``users[j]`` without the signals
    ``USER_DROPS[j]`` ``[3, n_users, d]``, ``items`` without the product image ``[n_items, d]``."""

    users: np.ndarray
    items: np.ndarray


@dataclass(frozen=True)
class RetrievalModel:
    """Everything retrieval serves from: prepared item and known-user vectors (rows = item_idx /
    user_idx), the index over the items, the user encoder (``tower`` and ``encoder``, or None)
    and the ablated vectors (None when the model cannot remove its signals)."""

    similarity: str
    items: np.ndarray
    users: np.ndarray
    index: ItemIndex
    tower: torch.jit.ScriptModule | None = None
    encoder: UserFeatureEncoder | None = None
    ablations: Ablations | None = None
    recall: tuning.RecallReport | None = None

    @property
    def dim(self) -> int:
        return int(self.items.shape[1])


def load_checkpoint(checkpoint: str | Path, device: str,
                    history_splits: Collection[str] | None = None) -> EmbeddingModel:
    """The trained model of a ``recsys-train`` checkpoint on ``device`` (auto, cpu, cuda);
    known users' vectors read the positives of ``history_splits`` (the checkpoint's test
    history when None)."""
    path = Path(checkpoint)
    if not path.exists():
        raise ModelError("checkpoint not found", file=str(path))
    from recsys.retrieval.trained import load_trained

    model: EmbeddingModel = load_trained(path, device=resolve_device(device),
                                         history_splits=list(history_splits)
                                         if history_splits is not None else None)
    return model


def convert(model: EmbeddingModel, dataset: DatasetTables, spec: IndexSpec, batch_size: int,
            user_tower: bool) -> RetrievalModel:
    """The retrieval model of ``model`` over ``dataset`` (every user and item, by index)."""
    users = dataset.users.sort_values("user_idx")
    items = dataset.items.sort_values("item_idx")
    user_idx = users["user_idx"].to_numpy(np.int64)
    emb = read_embeddings(model, user_idx, batch_size)
    if emb.items.shape[0] != len(items):
        raise ModelError(f"model embeds {emb.items.shape[0]} items, the dataset has {len(items)}")
    index = ItemIndex.build(emb.items, spec, emb.similarity)
    item_vectors = prepare(emb.items, emb.similarity)
    user_vectors = prepare(emb.users, emb.similarity)
    recall = tuning.calibrate(index, item_vectors,
                              user_vectors if len(user_vectors) else item_vectors, spec)
    log.info("index %s: ANN recall@%d = %.4f with %s", index.factory, recall.k, recall.recall,
             recall.params)
    tower, encoder = None, None
    if user_tower:
        tower = _script_tower(model)
        if tower is not None:
            encoder = user_encoder(_fitted(dataset), dict(getattr(dataset, "features", {}) or {}),
                                   items["item_id"].astype(str).tolist(), _tower_shapes(model))
            _check_tower(tower, encoder, emb.dim)
    ablations = _ablations(model, user_idx, emb.similarity, batch_size)
    return RetrievalModel(emb.similarity, item_vectors, user_vectors, index, tower, encoder,
                          ablations, recall)


def _ablations(model: EmbeddingModel, user_idx: np.ndarray, similarity: str, batch_size: int
               ) -> Ablations | None:
    if not isinstance(model, ExplainableModel):
        log.info("model cannot remove its signals: explanations carry the whole score as base")
        return None
    users = np.stack([prepare(model.ablated_user_embeddings(user_idx, drop, batch_size),
                              similarity) for drop in USER_DROPS])
    items = prepare(model.ablated_item_embeddings(("image",), batch_size), similarity)
    return Ablations(users, items)


def _fitted(dataset: DatasetTables) -> FittedParams:
    """The statistics the data stage fitted on the training split (``fitted.json``)."""
    fitted = getattr(dataset, "fitted", None)
    if not isinstance(fitted, FittedParams):
        raise DataError("dataset has no fitted statistics (fitted.json); rerun recsys-data",
                        file=str(dataset.path))
    return fitted


def _tower_shapes(model: EmbeddingModel) -> dict[str, int]:
    """History / social input shapes of the user tower, from the model's feature schema
    (``model.config["schema"]`` or ``model.net.schema``)."""
    config = getattr(model, "config", None)
    schema: Any = config.get("schema") if isinstance(config, Mapping) else None
    if schema is None:
        schema = getattr(getattr(model, "net", None), "schema", None)
    if schema is None:
        return {}
    if not isinstance(schema, Mapping):
        schema = {k: getattr(schema, k, 0) for k in ("history_len", "social_len", "social_dim")}
    return {k: int(schema.get(k, 0) or 0) for k in ("history_len", "social_len", "social_dim")}


def _script_tower(model: EmbeddingModel) -> torch.jit.ScriptModule | None:
    module = model.user_tower_for_export() if isinstance(model, TowerModel) else None
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

