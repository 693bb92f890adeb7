"""Two-tower methods (ID-only, image) evaluated from a trained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys.evaluation.rankers import EmbeddingRanker
from recsys.retrieval.converter import load_checkpoint
from recsys.retrieval.embeddings import EmbeddingModel, read_embeddings


def load_embedding_model(checkpoint: str | Path, device: str,
                         history_splits: Sequence[str] | None = None) -> EmbeddingModel:
    """The trained model behind ``checkpoint`` on ``device`` (auto, cpu, cuda or cuda:N), through
    the one checkpoint converter (:func:`recsys.retrieval.converter.load_checkpoint`). User
    vectors read the positives of ``history_splits`` as history (the evaluation's, like every
    baseline)."""
    return load_checkpoint(checkpoint, device, history_splits)


def embedding_ranker(
    model: EmbeddingModel, user_idx: np.ndarray, batch_size: int
) -> EmbeddingRanker:
    """Exact ranker over the model's item vectors for the users ``user_idx``."""
    emb = read_embeddings(model, user_idx, batch_size)
    return EmbeddingRanker(emb.users, emb.items, emb.similarity, user_idx=emb.user_idx,
                           batch_size=batch_size)
