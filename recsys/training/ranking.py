"""Full-catalogue ranking metrics (recall@K, NDCG@K), overall and on cold items, DDP-safe."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from recsys.training.tables import EvalTargets, FeatureTables


def target_matrix(rows: Tensor, items: Tensor, n_rows: int, n_items: int) -> Tensor:
    """Dense bool [n_rows, n_items] from (row, item) pairs."""
    dense = torch.zeros((n_rows, n_items), dtype=torch.bool, device=items.device)
    dense[rows, items] = True
    return dense


def seen_matrix(users: Tensor, offsets: Tensor, seq_items: Tensor, n_items: int) -> Tensor:
    """Dense bool [B, n_items]: items each user has among training positives (CSR gather)."""
    start, end = offsets[users], offsets[users + 1]
    lengths = end - start
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
    first = torch.repeat_interleave(start - torch.cumsum(lengths, 0) + lengths, lengths)
    pos = first + torch.arange(int(lengths.sum().item()), device=users.device)
    return target_matrix(rows, seq_items[pos], len(users), n_items)


def recall_ndcg(scores: Tensor, targets: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-row recall@k (hits / #targets), NDCG@k, and which rows have any target."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    hits = targets.gather(1, top).float()
    n_true = targets.sum(1).float()
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, device=scores.device, dtype=torch.float))
    dcg = (hits * discounts).sum(1)
    ideal = torch.cumsum(discounts, 0)[(n_true.clamp(min=1, max=k) - 1).long()]
    has = n_true > 0
    recall = torch.where(has, hits.sum(1) / n_true.clamp(min=1), 0.0)
    return recall, torch.where(has, dcg / ideal, 0.0), has


class RankingMetrics(Metric):
    """Mean recall@K and NDCG@K over users with at least one target."""

    full_state_update = False
    recall: Tensor
    ndcg: Tensor
    users: Tensor

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.add_state("recall", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")
        self.add_state("ndcg", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("users", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        recall, ndcg, has = recall_ndcg(scores, targets, self.k)
        self.recall += recall.sum().double()
        self.ndcg += ndcg.sum().double()
        self.users += has.sum().double()

    def compute(self) -> dict[str, Tensor]:
        n = self.users.clamp(min=1.0)
        return {"recall": (self.recall / n).float(), "ndcg": (self.ndcg / n).float(),
                "users": self.users.float()}


def popularity_baseline(tables: FeatureTables, targets: EvalTargets, k: int,
                        cold_only: bool = False) -> dict[str, float]:
    """Recall@K / NDCG@K of ranking every user's unseen items by training popularity."""
    metric = RankingMetrics(k)
    count = torch.as_tensor(tables.item_count, dtype=torch.float32)
    offsets = torch.as_tensor(tables.user_offsets)
    seq = torch.as_tensor(tables.seq_items)
    cold = torch.as_tensor(tables.cold_items)
    for start in range(0, len(targets.users), 1024):
        rows = np.arange(start, min(start + 1024, len(targets.users)))
        users = torch.as_tensor(targets.users[rows])
        lo, hi = targets.offsets[rows], targets.offsets[rows + 1]
        target_rows = torch.as_tensor(np.repeat(np.arange(len(rows)), hi - lo))
        items = torch.as_tensor(targets.items[lo[0]:hi[-1]])
        dense = target_matrix(target_rows, items, len(rows), len(count))
        if cold_only:
            dense &= cold.unsqueeze(0)
        scores = count.expand(len(rows), -1).masked_fill(
            seen_matrix(users, offsets, seq, len(count)), float("-inf"))
        metric.update(scores, dense)
    return {key: float(value) for key, value in metric.compute().items()}
