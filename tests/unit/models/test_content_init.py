"""History embeddings started from image features: PCA rows of unit norm, neighbours kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recsys.errors import ModelError
from recsys.models.content_init import init_from_features


def test_rows_follow_the_features_and_masked_rows_keep_their_start() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 40))
    group = np.arange(60) % 4
    feats = (centres[group] + 0.05 * rng.normal(size=(60, 40))).astype(np.float32)
    mask = np.ones(60, dtype=bool)
    mask[7] = False
    table = nn.Embedding(61, 8, padding_idx=0)
    before = table.weight.detach().clone()
    assert init_from_features(table, feats, mask) == 59
    w = table.weight.detach()
    assert torch.equal(w[0], before[0]) and torch.equal(w[8], before[8])  # padding, masked item
    rows = w[1:][torch.from_numpy(mask)]
    assert torch.allclose(rows.norm(dim=1), torch.ones(len(rows)), atol=1e-5)
    sims = rows @ rows.T
    g = torch.from_numpy(group[mask])
    same = g[:, None] == g[None, :]
    assert sims[same].mean() > 0.9 > 0.2 > sims[~same].mean()


def test_too_small_table_is_refused() -> None:
    with pytest.raises(ModelError, match="rows"):
        init_from_features(nn.Embedding(5, 4), np.zeros((10, 6), np.float32), np.ones(10, bool))
