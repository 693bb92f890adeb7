"""Two-tower methods (ID-only, image) evaluated from a trained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys.devices import resolve_device
from recsys.errors import ConfigError, ModelError
from recsys.evaluation.rankers import EmbeddingRanker
from recsys.retrieval.embeddings import EmbeddingModel, export_embeddings


def load_embedding_model(checkpoint: str | Path, device: str,
                         history_splits: Sequence[str] | None = None) -> EmbeddingModel:
    """The trained model behind ``checkpoint`` (``recsys.training.export.load_trained``) on
    ``device`` (auto, cpu, cuda or cuda:N; cuda needs a GPU, see
    :func:`recsys.devices.resolve_device`): embeddings are computed there in batches. User
    vectors read the positives of ``history_splits`` as history (the evaluation's, like every
    baseline)."""
    path = Path(checkpoint)
    if not path.exists():
        raise ModelError("checkpoint not found", file=str(path))
    try:
        from recsys.training.export import load_trained
    except ImportError as err:
        raise ConfigError(f"two-tower methods need recsys.training.export: {err}") from None
    model: EmbeddingModel = load_trained(path, device=resolve_device(device),
                                         history_splits=history_splits)
    return model


def embedding_ranker(
    model: EmbeddingModel, user_idx: np.ndarray, batch_size: int
) -> EmbeddingRanker:
    """Exact ranker over the model's item vectors for the users ``user_idx``."""
    emb = export_embeddings(model, user_idx, batch_size)
    return EmbeddingRanker(emb.users, emb.items, emb.similarity, user_idx=emb.user_idx,
                           batch_size=batch_size)
