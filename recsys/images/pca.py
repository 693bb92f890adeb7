"""Optional PCA reduction of image features (fitted on the usable images, saved as pca.npz)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.errors import ConfigError


@dataclass(frozen=True)
class PcaProjection:
    """``x -> (x - mean) @ components.T``."""

    mean: np.ndarray  # [D]
    components: np.ndarray  # [k, D]
    explained_variance_ratio: np.ndarray  # [k]

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) @ self.components.T).astype(np.float32)

    def save(self, path: Path) -> None:
        """``np.savez`` to ``path`` (callers write inside an atomic directory)."""
        np.savez(path, mean=self.mean, components=self.components,
                 explained_variance_ratio=self.explained_variance_ratio)

    @classmethod
    def load(cls, path: Path) -> PcaProjection:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mean"], z["components"], z["explained_variance_ratio"])


def fit_pca(x: np.ndarray, dim: int) -> PcaProjection:
    """Deterministic PCA (full SVD, sklearn's sign convention) to ``dim`` components."""
    from sklearn.decomposition import PCA

    if dim < 1 or len(x) < dim or x.shape[1] < dim:
        raise ConfigError(
            f"pca.dim {dim} needs 1 <= dim <= min(usable images {len(x)}, feature dim "
            f"{x.shape[1] if x.ndim == 2 else 0})",
            column="pca.dim",
        )
    pca = PCA(n_components=dim, svd_solver="full").fit(np.asarray(x, np.float64))
    return PcaProjection(
        mean=pca.mean_.astype(np.float32),
        components=pca.components_.astype(np.float32),
        explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float32),
    )
