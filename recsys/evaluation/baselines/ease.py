"""EASE (Steck, 2019): a closed-form item-item linear model with a zero diagonal; with
``dropout``, its denoising form EDLAE (Steck, 2020)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError, ModelError
from recsys.evaluation.eval_data import item_gram
from recsys.evaluation.rankers import ScoreRanker

DTYPES = {"float32": np.float32, "float64": np.float64}


def ease_weights(gram: sp.spmatrix, l2: float, dtype: str = "float64",
                 dropout: float = 0.0) -> np.ndarray:
    """Item-item weights ``B`` minimising ``||X - XB||^2 + ||L^(1/2) B||^2`` subject to
    ``diag(B) = 0`` for the binarised history X whose ``gram`` ``X'X`` is given
    (:func:`recsys.evaluation.eval_data.item_gram`), with ``L = l2 I + dropout / (1 - dropout)
    diag(X'X)``: EASE's penalty plus the one that dropping each input item with probability
    ``dropout`` amounts to in expectation (EDLAE, Steck 2020: emphasised denoising with full
    emphasis; ``dropout`` 0 is EASE). With ``P = (X'X + L)^-1``, ``B = -P / diag(P)``
    column-wise and a zero diagonal. Solved densely in ``dtype``, inverted through its Cholesky
    factor (LAPACK potrf + potri: symmetric positive definite for ``l2 > 0``); float32 result."""
    if l2 <= 0:
        raise ConfigError(f"EASE l2 must be positive, got {l2}", column="l2")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"EASE dropout must lie in [0, 1), got {dropout}", column="dropout")
    if dtype not in DTYPES:
        raise ConfigError(f"EASE dtype must be one of {', '.join(DTYPES)}, got {dtype!r}",
                          column="dtype")
    gram = np.asarray(sp.csr_matrix(gram).toarray(), dtype=DTYPES[dtype])
    gram[np.diag_indices_from(gram)] *= 1.0 + dropout / (1.0 - dropout)
    gram[np.diag_indices_from(gram)] += l2
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        p, info = potri(factor, lower=True, overwrite_c=True)  # inverse from the factor
    if info != 0:
        raise ModelError(f"EASE gram matrix is not positive definite (LAPACK info {info})")
    p = np.tril(p)
    p += np.tril(p, -1).T  # potri fills the lower triangle only
    p /= -np.diag(p).copy()[None, :]
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


def fit_ease(history: sp.csr_matrix, *, l2: float, dtype: str = "float64", dropout: float = 0.0,
             gram: sp.spmatrix | None = None) -> EaseRanker:
    """EASE (EDLAE with ``dropout``) fitted on ``history`` (see :func:`ease_weights`; ``gram``
    when already computed)."""
    gram = item_gram(history) if gram is None else gram
    return EaseRanker(history, ease_weights(gram, l2, dtype, dropout))
