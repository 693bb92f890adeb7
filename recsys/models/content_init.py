"""Start an item-indexed embedding table from item content (product-image features).

A purchase-history table learned from ids alone knows nothing about rarely bought items; started
from a PCA of their image features, similar-looking items begin close together and the pooled
history carries taste from the first step (the table is still trained).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recsys.errors import ModelError


def init_from_features(table: nn.Embedding, features: np.ndarray, mask: np.ndarray,
                       offset: int = 1, seed: int = 0) -> int:
    """Overwrite rows ``offset + i`` of ``table`` with the PCA projection of ``features[i]``
    (rows with ``mask[i]`` false keep their initialisation); each row gets unit norm, the
    scale of the default ``normal(std=dim**-0.5)`` rows. Returns the number of rows set."""
    n, dim = features.shape[0], table.embedding_dim
    if table.num_embeddings < offset + n:
        raise ModelError(f"embedding table has {table.num_embeddings} rows, "
                         f"{offset + n} needed for {n} items")
    rows = np.flatnonzero(mask)
    if len(rows) <= dim:
        return 0
    x = torch.from_numpy(np.ascontiguousarray(features[rows], dtype=np.float32))
    x = nn.functional.normalize(x, dim=1)
    x = x - x.mean(0, keepdim=True)
    torch.manual_seed(seed)
    _, _, v = torch.pca_lowrank(x, q=dim, center=False)
    z = nn.functional.normalize(x @ v[:, :dim], dim=1)
    with torch.no_grad():
        table.weight[torch.from_numpy(rows + offset)] = z.to(table.weight.dtype)
    return len(rows)
