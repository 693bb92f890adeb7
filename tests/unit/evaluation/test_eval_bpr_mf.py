"""BPR-MF in torch: reproducible with a seed, learns a planted two-group preference, and its
negatives are never the user's positives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.evaluation.baselines.bpr_mf import _negatives, fit_bpr_mf

SETTINGS = {"factors": 8, "learning_rate": 0.05, "regularization": 0.0001, "epochs": 40,
            "batch_size": 32, "seed": 3}


def planted() -> sp.csr_matrix:
    """Users 0-9 like items 0-4, users 10-19 items 5-9; each user misses one of their group."""
    dense = np.zeros((20, 10), dtype=np.float32)
    for u in range(20):
        group = range(0, 5) if u < 10 else range(5, 10)
        dense[u, [i for i in group if i != u % 5 + (0 if u < 10 else 5)]] = 1.0
    return sp.csr_matrix(dense)


def test_bpr_mf_learns_the_groups_and_is_seeded() -> None:
    history = planted()
    ranker = fit_bpr_mf(history, **SETTINGS)
    top = ranker.top_k(np.arange(20), 1, history)[:, 0]
    held_out = np.array([u % 5 + (0 if u < 10 else 5) for u in range(20)])
    assert (top == held_out).mean() >= 0.9  # the one unseen item of the user's own group
    again = fit_bpr_mf(history, **SETTINGS)
    np.testing.assert_array_equal(again.users, ranker.users)
    with pytest.raises(ConfigError, match="BPR-MF"):
        fit_bpr_mf(history, **{**SETTINGS, "epochs": 0})


def test_negatives_avoid_positives() -> None:
    history = planted().tocoo()
    keys = np.sort(history.row.astype(np.int64) * 10 + history.col)
    users = torch.from_numpy(np.repeat(np.arange(20), 50))
    neg = _negatives(users, 10, keys, torch.Generator().manual_seed(0)).numpy()
    assert not np.isin(users.numpy() * 10 + neg, keys).any()
