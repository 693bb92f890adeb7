"""Matrix factorisation baselines from the ``implicit`` package: ALS and BPR."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys.evaluation.rankers import EmbeddingRanker


def _factors(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """CPU factor matrices of a fitted ``implicit`` model."""
    return (np.asarray(model.user_factors, dtype=np.float32),
            np.asarray(model.item_factors, dtype=np.float32))


def fit_als(
    history: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    iterations: int,
    alpha: float,
    seed: int,
    threads: int,
) -> EmbeddingRanker:
    """Implicit ALS on confidences ``alpha * counts``; ranks by the dot product of factors."""
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors, regularization=regularization, iterations=iterations,
            random_state=seed, num_threads=threads,
        )
        model.fit((history * alpha).astype(np.float32).tocsr(), show_progress=False)
    users, items = _factors(model)
    return EmbeddingRanker(users, items, "dot")


def fit_bpr(
    history: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    iterations: int,
    seed: int,
    threads: int,
) -> EmbeddingRanker:
    """Bayesian personalised ranking on the binarised history (item bias folded into factors)."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    binary = (history > 0).astype(np.float32).tocsr()
    with threadpool_limits(1, "blas"):
        model = BayesianPersonalizedRanking(
            factors=factors, learning_rate=learning_rate, regularization=regularization,
            iterations=iterations, random_state=seed, num_threads=threads,
        )
        model.fit(binary, show_progress=False)
    users, items = _factors(model)
    return EmbeddingRanker(users, items, "dot")
