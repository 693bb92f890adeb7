"""History encoders: a user's past positives ``[B, L, D]`` (most recent first) -> one vector.

Every encoder is built as ``encoder(dim=..., max_len=...)`` (a Hydra ``_partial_`` from the
``model/history_encoder`` config group) and called as ``encoder(x, mask, age)`` with ``mask``
[B, L] True at real entries and ``age`` [B, L] log1p(days before the reference time).
``item_features`` names the item-tower blocks the shared history representation reads (None:
all of them; see :class:`~recsys.models.towers.ItemTower`). ``ordered`` says whether the
encoder reads the order of the history: such an encoder needs timestamped data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recsys.errors import ConfigError
from recsys.models.pooling import AttentionPooling, masked_mean


class MeanHistory(nn.Module):
    """Sum of the history vectors divided by ``count ** count_power`` (a bag of items,
    order-free): 1 is the mean, 0.5 scales by the square root of the count (as implicit
    feedback models do: a longer history then gives larger scores, which a squared loss needs,
    EASE's ``x_u B`` being the plain sum), 0 the sum."""

    ordered = False

    def __init__(self, dim: int, max_len: int, item_features: list[str] | None = None,
                 count_power: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= count_power <= 1.0:
            raise ConfigError(f"model.history_encoder.count_power must lie in [0, 1], got "
                              f"{count_power}", column="model.history_encoder.count_power")
        self.out_dim = dim
        self.count_power = float(count_power)
        self.item_features = None if item_features is None else [str(f) for f in item_features]

    def forward(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        if self.count_power == 1.0:
            return masked_mean(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0).pow(self.count_power)


class AttentionHistory(nn.Module):
    """Single-query attention pooling; with ``recency`` the keys see the age of each item."""

    ordered = False

    def __init__(self, dim: int, max_len: int, item_features: list[str] | None = None,
                 recency: bool = True) -> None:
        super().__init__()
        self.out_dim = dim
        self.item_features = None if item_features is None else [str(f) for f in item_features]
        self.pool = AttentionPooling(dim, recency=recency)

    def forward(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        out: Tensor = self.pool(x, mask, age)
        return out


class TransformerHistory(nn.Module):
    """A small causal Transformer over the history (SASRec-like, pre-norm); the user vector is
    the output at the most recent position, which attends to itself and every earlier item.

    ``position``: ``learned`` (an embedding per recency rank: the most recent item is rank 0),
    ``chronological`` (an embedding per rank from the oldest item, SASRec's positions: the
    readout then always sits at position history length - 1, whichever prefix it summarises,
    which one-pass sequence training needs), ``time_gap`` (a projection of log1p(age in days)) or
    ``none`` (no order: a set encoder, allowed without timestamps).
    """

    def __init__(self, dim: int, max_len: int, item_features: list[str] | None = None,
                 layers: int = 1, heads: int = 2, dropout: float = 0.1,
                 position: str = "learned") -> None:
        super().__init__()
        if position not in ("learned", "chronological", "time_gap", "none"):
            raise ValueError(f"history encoder position must be learned, chronological, "
                             f"time_gap or none, got {position!r}")
        if dim % heads:
            raise ValueError(f"history encoder: dim {dim} is not divisible by heads {heads}")
        self.out_dim, self.heads = dim, heads
        self.item_features = None if item_features is None else [str(f) for f in item_features]
        self.ordered = position != "none"
        self.use_rank = position in ("learned", "chronological")
        self.chronological, self.use_gap = position == "chronological", position == "time_gap"
        self.rank = nn.Embedding(max(1, max_len), dim)
        nn.init.normal_(self.rank.weight, std=0.02)
        self.gap = nn.Linear(1, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        first = self.states(x, mask, age)[:, 0]
        return first * mask.any(1).unsqueeze(-1).to(first.dtype)

    def states(self, x: Tensor, mask: Tensor, age: Tensor) -> Tensor:
        """The encoder's output at every position [B, L, D]: position ``i`` summarises the
        history made of item ``i`` and everything older (the user vector had item ``i`` been the
        most recent purchase); one pass gives every prefix of the sequence (``examples:
        sequence``). Padding positions hold arbitrary values."""
        length = x.shape[1]
        x = x * mask.unsqueeze(-1).to(x.dtype)  # padding carries no value
        if self.use_rank and self.chronological:  # rank from the oldest real item
            steps = torch.arange(length, device=x.device).unsqueeze(0)
            rank = (mask.sum(1, keepdim=True) - 1 - steps).clamp(min=0)
            x = x + self.rank(rank).to(x.dtype)
        elif self.use_rank:
            x = x + self.rank(torch.arange(length, device=x.device)).to(x.dtype).unsqueeze(0)
        if self.use_gap:
            x = x + self.gap(age.unsqueeze(-1).to(x.dtype))
        steps = torch.arange(length, device=x.device)
        # most recent first: position i reads positions j >= i (itself and older items), never
        # padding; every position reads at least itself, so no attention row is empty
        blocked = (steps.unsqueeze(1) > steps.unsqueeze(0)).unsqueeze(0) | (~mask).unsqueeze(1)
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=x.device).unsqueeze(0)
        out: Tensor = self.norm(self.encoder(x, mask=blocked.repeat_interleave(self.heads, 0)))
        return out
