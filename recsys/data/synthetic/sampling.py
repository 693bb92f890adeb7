"""Vectorised random draws shared by the population, catalogue and interaction models."""

from __future__ import annotations

import numpy as np

FloatArray = np.ndarray
IntArray = np.ndarray


def categorical_rows(rng: np.random.Generator, probs: FloatArray) -> IntArray:
    """One category index per row of ``probs`` (rows need not be normalised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    idx = (cum <= u[:, None]).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1)


def categorical(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    """``size`` draws from one weight vector."""
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def dirichlet_rows(rng: np.random.Generator, alpha: FloatArray) -> FloatArray:
    """One Dirichlet draw per row of concentration parameters (via normalised gammas)."""
    g = rng.gamma(alpha) + 1e-12
    return g / g.sum(axis=1, keepdims=True)


def sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def softmax_rows(x: FloatArray) -> FloatArray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def id_strings(prefix: str, n: int) -> np.ndarray:
    """Zero-padded identifiers ``prefix000000`` .. as an object array."""
    width = max(6, len(str(max(n - 1, 0))))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)
