"""Embedding tables: id embeddings with cold-start dropout, categorical and multi-hot fields.

(No ``from __future__ import annotations`` here: TorchScript must read the class annotations.)
"""

import torch
from torch import Tensor, nn


class IdEmbedding(nn.Module):
    """Embedding of an id bucket; row 0 is the learned "cold" vector.

    During training each id is replaced by the cold row with probability ``dropout`` so that the
    cold vector learns to stand for users or items the model has not seen. ``sparse`` makes the
    table produce sparse gradients (worth it for large tables, see ``sparse_min_rows``).
    """

    def __init__(self, num_rows: int, dim: int, dropout: float, sparse: bool) -> None:
        super().__init__()
        if num_rows < 1 or dim < 1:
            raise ValueError(f"IdEmbedding needs rows >= 1 and dim >= 1, got {num_rows}, {dim}")
        self.table = nn.Embedding(num_rows, dim, sparse=sparse)
        nn.init.normal_(self.table.weight, std=dim**-0.5)
        self.dropout = float(dropout)
        self.out_dim = dim

    def forward(self, ids: Tensor) -> Tensor:
        if self.training and self.dropout > 0:
            drop = torch.rand(ids.shape, device=ids.device) < self.dropout
            ids = torch.where(drop, torch.zeros_like(ids), ids)
        return self.table(ids)


class CategoricalEmbedding(nn.Module):
    """Several categorical fields in one table (row offsets per field); output is their concat."""

    offsets: Tensor

    def __init__(self, vocab_sizes: list[int], dim: int) -> None:
        super().__init__()
        sizes = [max(1, int(s)) for s in vocab_sizes]
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0) if sizes else None
        self.register_buffer("offsets", offsets if offsets is not None else torch.zeros(0).long())
        self.table = nn.Embedding(max(1, sum(sizes)), dim)
        nn.init.normal_(self.table.weight, std=dim**-0.5)
        self.out_dim = dim * len(sizes)

    def forward(self, idx: Tensor) -> Tensor:
        """idx: [B, F] per-field indices -> [B, F * dim]."""
        emb = self.table(idx + self.offsets)
        return emb.flatten(1)


class MultiHotEmbedding(CategoricalEmbedding):
    """Several multi-valued fields; each field is the mean of its values' embeddings (0 = none).
    Same table layout as :class:`CategoricalEmbedding` (so the same state-dict keys)."""

    def forward(self, idx: Tensor) -> Tensor:
        """idx: [B, F, L] per-field value indices, 0 = padding -> [B, F * dim]."""
        mask = (idx > 0).unsqueeze(-1).to(self.table.weight.dtype)
        emb = self.table(idx + self.offsets.view(1, -1, 1)) * mask
        pooled = emb.sum(2) / mask.sum(2).clamp(min=1.0)
        return pooled.flatten(1)
