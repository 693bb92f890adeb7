"""A fixed image-similarity channel of the two towers: each item carries a unit vector of its
product image (a seeded random projection of the standardised CNN features, which keeps their
cosines), each user the mean of those vectors over their latest purchases, so that
``user . item`` gains ``weight * (profile . image)``: how much the candidate looks like what the
user bought last, a content term that needs no training interaction of the item (cold items).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ImageKernel(nn.Module):
    """Item side: ``image`` [..., image_dim] -> unit vectors [..., dim]; an item without an image
    gets one learned unit vector (so that every item vector has the same norm)."""

    def __init__(self, image_dim: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        if image_dim < 1 or dim < 1:
            raise ValueError(f"the image kernel needs image features and a dim >= 1, got "
                             f"image_dim={image_dim}, dim={dim}")
        generator = torch.Generator().manual_seed(seed)
        self.projection: Tensor
        self.register_buffer("projection", torch.randn(image_dim, dim, generator=generator)
                             * dim**-0.5)
        self.missing = nn.Parameter(torch.randn(dim, generator=generator) * dim**-0.5)
        self.image_dim = image_dim
        self.out_dim = dim

    def forward(self, image: Tensor, image_mask: Tensor) -> Tensor:
        standard = F.layer_norm(image, (self.image_dim,))
        vec = F.normalize(standard @ self.projection.to(image.dtype), dim=-1)
        missing = F.normalize(self.missing, dim=0).to(vec.dtype).expand_as(vec)
        return torch.where(image_mask.unsqueeze(-1), vec, missing)


def recent_profile(vectors: Tensor, mask: Tensor, recent: int) -> Tensor:
    """Unit mean of ``vectors`` [B, L, d] over the first ``recent`` valid positions of ``mask``
    [B, L] (histories are most recent first); zeros for an empty history."""
    mask = mask[:, :recent].unsqueeze(-1).to(vectors.dtype)
    total = (vectors[:, :recent] * mask).sum(1)
    return F.normalize(total, dim=-1)
