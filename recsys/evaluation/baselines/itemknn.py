"""ItemKNN: cosine item-item similarity with shrinkage, the ``k`` nearest neighbours kept."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.evaluation.eval_data import item_gram
from recsys.evaluation.rankers import ScoreRanker
from recsys.ties import top_k

# similarities computed per column block (floats): the dense block stays small
BLOCK_FLOATS = 1 << 23


def knn_weights(gram: sp.spmatrix, k: int, shrink: float) -> sp.csr_matrix:
    """Sparse ``W [n_items, n_items]`` whose column ``j`` holds the ``k`` items most similar
    to ``j`` (self excluded; ties by lower index) with
    ``sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrink)`` over binarised user columns (the
    RecBole ItemKNN definition, without its 1e-6 guard: empty items have zero dot products),
    from the co-occurrence ``gram`` ``X'X`` (:func:`recsys.evaluation.eval_data.item_gram`)."""
    if k < 1 or shrink < 0:
        raise ConfigError(f"ItemKNN needs k >= 1 and shrink >= 0, got k={k}, shrink={shrink}",
                          column="k")
    gram = sp.csr_matrix(gram)
    n_items = gram.shape[1]
    k = min(k, n_items - 1)
    if k < 1:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    norms = np.sqrt(gram.diagonal().astype(np.float64))
    block = max(1, BLOCK_FLOATS // n_items)
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        dots = gram[start:stop].toarray()  # [b, n_items]: the block items' co-counts
        with np.errstate(invalid="ignore", divide="ignore"):
            sims = dots / (norms[start:stop, None] * norms[None, :] + shrink)
        sims = np.nan_to_num(sims, nan=0.0).astype(np.float32)
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        value, idx = (t.numpy() for t in top_k(torch.from_numpy(sims), k))
        keep = value > 0
        rows.append(idx[keep])
        cols.append(np.repeat(np.arange(start, stop), keep.sum(axis=1)))
        vals.append(value[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items, n_items), dtype=np.float32)


class ItemKnnRanker(ScoreRanker):
    """Scores ``x_u W``: summed similarities of the user's items to each candidate."""

    def __init__(self, history: sp.csr_matrix, weights: sp.csr_matrix) -> None:
        super().__init__(weights.shape[1])
        self.history = (history > 0).astype(np.float32).tocsr()
        self.weights = weights.tocsr()

    def scores(self, user_idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((self.history[user_idx] @ self.weights).toarray())


def fit_itemknn(history: sp.csr_matrix, *, k: int, shrink: float,
                gram: sp.spmatrix | None = None) -> ItemKnnRanker:
    """ItemKNN fitted on ``history`` (see :func:`knn_weights`; ``gram`` when already computed)."""
    gram = item_gram(history) if gram is None else gram
    return ItemKnnRanker(history, knn_weights(gram, int(k), float(shrink)))
