"""Fusion of a tower's feature blocks into one vector: concat + MLP, linear + residual MLP, or
gated sum."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _mlp(in_dim: int, hidden: list[int], out_dim: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers += [nn.Linear(prev, width), nn.GELU(), nn.Dropout(dropout)]
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class ConcatMLPFusion(nn.Module):
    """Concatenate the blocks and map them through an MLP."""

    def __init__(self, in_dims: list[int], out_dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        if not in_dims or min(in_dims) < 1:
            raise ValueError(f"fusion needs at least one non-empty input, got dims {in_dims}")
        self.mlp = _mlp(sum(in_dims), list(hidden), out_dim, dropout)
        self.out_dim = out_dim

    def forward(self, blocks: list[Tensor]) -> Tensor:
        return self.mlp(torch.cat(blocks, dim=-1))


class GatedFusion(nn.Module):
    """Project each block to ``out_dim`` and sum them, weighted by per-dimension sigmoid gates
    computed from all blocks; a small MLP refines the sum."""

    def __init__(self, in_dims: list[int], out_dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        if not in_dims or min(in_dims) < 1:
            raise ValueError(f"fusion needs at least one non-empty input, got dims {in_dims}")
        self.projections = nn.ModuleList([nn.Linear(d, out_dim) for d in in_dims])
        self.gate = nn.Linear(sum(in_dims), out_dim * len(in_dims))
        self.refine = _mlp(out_dim, list(hidden), out_dim, dropout)
        self.n_blocks = len(in_dims)
        self.out_dim = out_dim

    def forward(self, blocks: list[Tensor]) -> Tensor:
        gates = torch.sigmoid(self.gate(torch.cat(blocks, dim=-1)))
        gates = gates.view(gates.shape[0], self.n_blocks, self.out_dim)
        total = torch.zeros_like(gates[:, 0])
        for i, proj in enumerate(self.projections):
            total = total + gates[:, i] * proj(blocks[i])
        return total + self.refine(total)


class ResidualMLPFusion(nn.Module):
    """Concatenate the blocks; a linear map plus an MLP whose last layer starts at zero.

    Training starts from the linear tower and adds nonlinear terms only as far as they lower the
    loss (a zero-initialised residual branch), which keeps unnormalised towers under the squared
    loss stable where a plain MLP from a random start collapsed.
    """

    def __init__(self, in_dims: list[int], out_dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        if not in_dims or min(in_dims) < 1:
            raise ValueError(f"fusion needs at least one non-empty input, got dims {in_dims}")
        if not hidden:
            raise ValueError("residual_mlp fusion needs at least one hidden layer (fusion.hidden); "
                             "hidden [] is the linear concat_mlp")
        self.linear = nn.Linear(sum(in_dims), out_dim)
        self.mlp = _mlp(sum(in_dims), list(hidden), out_dim, dropout)
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.out_dim = out_dim

    def forward(self, blocks: list[Tensor]) -> Tensor:
        x = torch.cat(blocks, dim=-1)
        return self.linear(x) + self.mlp(x)
