"""Embeddings of a model: anything that yields item and user vectors, read in batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from recsys.errors import ModelError
from recsys.retrieval.similarity import metric_for


@runtime_checkable
class EmbeddingModel(Protocol):
    """A trained model seen from retrieval: towers that embed items and known users."""

    @property
    def similarity(self) -> str: ...

    def item_embeddings(self, batch_size: int) -> np.ndarray: ...

    def user_embeddings(self, user_idx: np.ndarray) -> np.ndarray: ...


@dataclass
class StaticEmbeddings:
    """Precomputed matrices behaving as an :class:`EmbeddingModel` (baselines, tests)."""

    items: np.ndarray
    users: np.ndarray
    similarity: str = "dot"

    def item_embeddings(self, batch_size: int) -> np.ndarray:
        return self.items

    def user_embeddings(self, user_idx: np.ndarray) -> np.ndarray:
        return self.users[np.asarray(user_idx, dtype=np.int64)]


@dataclass(frozen=True)
class Embeddings:
    """Item vectors ``[n_items, d]`` and the vectors of users ``user_idx`` ``[n_users, d]``."""

    items: np.ndarray
    users: np.ndarray
    user_idx: np.ndarray
    similarity: str

    @property
    def dim(self) -> int:
        return int(self.items.shape[1])


def read_embeddings(
    model: EmbeddingModel, user_idx: np.ndarray, batch_size: int
) -> Embeddings:
    """Item embeddings and the embeddings of ``user_idx``, users read ``batch_size`` at a time."""
    metric_for(model.similarity)
    items = np.asarray(model.item_embeddings(batch_size), dtype=np.float32)
    user_idx = np.asarray(user_idx, dtype=np.int64)
    parts = [
        np.asarray(model.user_embeddings(user_idx[s : s + batch_size]), dtype=np.float32)
        for s in range(0, len(user_idx), batch_size)
    ]
    users = np.concatenate(parts) if parts else np.zeros((0, items.shape[1]), np.float32)
    if items.ndim != 2 or users.shape != (len(user_idx), items.shape[1]):
        raise ModelError(
            f"model returned item embeddings {items.shape} and user embeddings {users.shape} "
            f"for {len(user_idx)} users"
        )
    for name, x in (("item", items), ("user", users)):
        if not np.isfinite(x).all():
            raise ModelError(f"model returned non-finite {name} embeddings")
    return Embeddings(items, users, user_idx, model.similarity)
