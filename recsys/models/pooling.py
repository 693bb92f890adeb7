"""Pooling of variable-length sets (purchase history, a user's social images) into one vector."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` [B, L, D] over positions where ``mask`` [B, L] is True; zeros if none."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class MeanPooling(nn.Module):
    """Masked mean; ``age`` (recency) is accepted for a common signature and ignored."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        return masked_mean(x, mask)


class AttentionPooling(nn.Module):
    """Single-query attention over the set; with ``recency`` the keys see log1p(age in days)."""

    def __init__(self, dim: int, recency: bool = True) -> None:
        super().__init__()
        self.key = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.recency = recency
        self.age_weight = nn.Parameter(torch.zeros(dim))
        self.scale = 1.0 / math.sqrt(dim)
        self.out_dim = dim

    def forward(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        keys = torch.tanh(self.key(x))
        if self.recency:
            keys = keys + age.unsqueeze(-1).to(x.dtype) * self.age_weight
        scores = (keys @ self.query.to(keys.dtype)) * self.scale
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=1)
        weights = torch.nan_to_num(weights, nan=0.0).to(x.dtype)  # rows without any element
        return (weights.unsqueeze(-1) * x).sum(1)
