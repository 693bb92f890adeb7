"""Similarity of a model's towers and the FAISS metric it implies."""

from __future__ import annotations

import faiss
import numpy as np

from recsys.errors import ConfigError

SIMILARITIES: tuple[str, ...] = ("dot", "cosine", "l2")
_METRIC_OF = {"dot": "ip", "cosine": "ip", "l2": "l2"}
_FAISS_METRIC = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


def metric_for(similarity: str) -> str:
    """FAISS metric name (``"ip"`` or ``"l2"``) that ranks like ``similarity``."""
    if similarity not in _METRIC_OF:
        raise ConfigError(f"similarity {similarity!r} is not one of {', '.join(SIMILARITIES)}")
    return _METRIC_OF[similarity]


def faiss_metric(metric: str) -> int:
    """FAISS metric constant of ``"ip"`` / ``"l2"``."""
    if metric not in _FAISS_METRIC:
        raise ConfigError(f"index metric {metric!r} is not one of ip, l2")
    return int(_FAISS_METRIC[metric])


def metric_name(faiss_metric_type: int) -> str:
    """Inverse of :func:`faiss_metric`."""
    for name, value in _FAISS_METRIC.items():
        if value == faiss_metric_type:
            return name
    raise ConfigError(f"FAISS metric type {faiss_metric_type} is not supported (ip, l2)")


def check_metric(requested: str | None, similarity: str) -> str:
    """The metric for ``similarity``; refuse an explicitly requested metric that disagrees."""
    derived = metric_for(similarity)
    if requested not in (None, "auto", derived):
        raise ConfigError(
            f"index metric {requested!r} does not rank like the model's {similarity!r} "
            f"similarity (needs {derived!r})"
        )
    return derived


def prepare(vectors: np.ndarray, similarity: str) -> np.ndarray:
    """Contiguous float32 copy, L2-normalised when the similarity is cosine."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"embeddings must be a 2-D matrix, got shape {x.shape}")
    if similarity == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(x, dtype=np.float32)
