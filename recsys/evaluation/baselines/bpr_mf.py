"""BPR-MF in torch, as RecBole's BPR: user and item embeddings (Xavier-normal), one uniform
negative per positive (never one of the user's positives), ``-log sigmoid(u.(i - j))`` with
Adam over shuffled mini-batches; L2 on the batch's embeddings."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError
from recsys.evaluation.rankers import EmbeddingRanker

REDRAWS = 50  # a user who bought nearly the whole catalogue keeps a positive as negative


def fit_bpr_mf(
    history: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    epochs: int,
    batch_size: int,
    seed: int,
) -> EmbeddingRanker:
    """Fit on the binarised ``history``; rank by the dot product of the embeddings."""
    if factors < 1 or epochs < 1 or batch_size < 1 or learning_rate <= 0 or regularization < 0:
        raise ConfigError(f"BPR-MF needs positive factors, epochs, batch_size and learning_rate "
                          f"and regularization >= 0, got {factors}, {epochs}, {batch_size}, "
                          f"{learning_rate}, {regularization}", column="bpr")
    pos = sp.coo_matrix(history > 0)
    n_users, n_items = history.shape
    users = torch.from_numpy(pos.row.astype(np.int64))
    items = torch.from_numpy(pos.col.astype(np.int64))
    keys = np.sort(pos.row.astype(np.int64) * n_items + pos.col)
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.nn.init.xavier_normal_(torch.empty(n_users, factors), generator=gen)
    item_emb = torch.nn.init.xavier_normal_(torch.empty(n_items, factors), generator=gen)
    params = [user_emb.requires_grad_(), item_emb.requires_grad_()]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    for _ in range(epochs):
        order = torch.randperm(len(users), generator=gen)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            u, i = users[batch], items[batch]
            j = _negatives(u, n_items, keys, gen)
            pu, qi, qj = user_emb[u], item_emb[i], item_emb[j]
            loss = -torch.nn.functional.logsigmoid((pu * (qi - qj)).sum(-1)).mean()
            if regularization:
                loss = loss + regularization * (pu.square().sum() + qi.square().sum()
                                                 + qj.square().sum()) / len(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return EmbeddingRanker(user_emb.detach().numpy(), item_emb.detach().numpy(), "dot")


def _negatives(users: torch.Tensor, n_items: int, keys: np.ndarray, gen: torch.Generator
               ) -> torch.Tensor:
    """One uniform item per user, redrawn (at most :data:`REDRAWS` times) while it is one of
    the user's positives (``keys``: sorted ``user * n_items + item``)."""
    neg = torch.randint(0, n_items, (len(users),), generator=gen)
    base = users.numpy().astype(np.int64) * n_items
    todo = np.arange(len(users))
    for _ in range(REDRAWS):
        query = base[todo] + neg.numpy()[todo]
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        todo = todo[keys[pos] == query]
        if not len(todo):
            break
        neg[torch.from_numpy(todo)] = torch.randint(0, n_items, (len(todo),), generator=gen)
    return neg
