"""EASE (Steck, 2019): a closed-form item-item linear model with a zero diagonal."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError, ModelError
from recsys.evaluation.rankers import ScoreRanker

DTYPES = {"float32": np.float32, "float64": np.float64}


def ease_weights(history: sp.csr_matrix, l2: float, dtype: str = "float64") -> np.ndarray:
    """Item-item weights ``B`` minimising ``||X - XB||^2 + l2 ||B||^2`` subject to
    ``diag(B) = 0``, on the binarised ``history`` X: with ``P = (X'X + l2 I)^-1``,
    ``B = -P / diag(P)`` column-wise and a zero diagonal. The gram is built and solved in
    ``dtype`` (Cholesky: it is symmetric positive definite for ``l2 > 0``); float32 result."""
    if l2 <= 0:
        raise ConfigError(f"EASE l2 must be positive, got {l2}", column="l2")
    if dtype not in DTYPES:
        raise ConfigError(f"EASE dtype must be one of {', '.join(DTYPES)}, got {dtype!r}",
                          column="dtype")
    x = (history > 0).astype(DTYPES[dtype])
    gram = np.asarray((x.T @ x).toarray(), dtype=DTYPES[dtype])
    gram[np.diag_indices_from(gram)] += l2
    try:
        factor = scipy.linalg.cho_factor(gram, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as err:
        raise ModelError(f"EASE gram matrix is not positive definite ({err})") from None
    identity = np.eye(gram.shape[0], dtype=gram.dtype)
    p = scipy.linalg.cho_solve(factor, identity, overwrite_b=True, check_finite=False)
    p /= -np.diag(p)[None, :]  # in place: two n_items^2 arrays at the peak
    p[np.diag_indices_from(p)] = 0.0
    return p.astype(np.float32, copy=False)


class EaseRanker(ScoreRanker):
    """Scores ``x_u B``: the user's binarised history times the EASE weights."""

    def __init__(self, history: sp.csr_matrix, weights: np.ndarray) -> None:
        super().__init__(weights.shape[1])
        self.history = (history > 0).astype(np.float32).tocsr()
        self.weights = weights

    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.history[user_idx] @ self.weights))


def fit_ease(history: sp.csr_matrix, *, l2: float, dtype: str = "float64") -> EaseRanker:
    """EASE fitted on ``history`` (see :func:`ease_weights`)."""
    return EaseRanker(history, ease_weights(history, l2, dtype))
