"""Full-catalogue ranking metrics of training's validation, overall and on cold items, DDP-safe:
the evaluator's metric implementation and the package's tie rule on dense score blocks."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from recsys.evaluation.metrics import METRIC_NAMES, metrics_from_hits
from recsys.ties import top_k
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


class RankingMetrics(Metric):
    """Mean :data:`~recsys.evaluation.metrics.METRIC_NAMES` at ``k`` over users with at least
    one target, DDP-safe (per-metric sums and the user count are summed over ranks).

    Rows are ranked under the package's tie rule (:func:`recsys.ties.top_k`, on the scores'
    device); the metric values come from :func:`recsys.evaluation.metrics.metrics_from_hits`,
    the evaluator's own implementation, on the small ``[B, k]`` hit matrix. Excluded items
    are ``-inf`` scores: never hits, but still counted among a user's targets (as there).
    """

    full_state_update = False
    users: Tensor

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.names = [f"{name}@{k}" for name in METRIC_NAMES]
        for name in (*self.names, "users"):
            self.add_state(_state(name), default=torch.tensor(0.0, dtype=torch.float64),
                           dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        """Add a batch: ``scores`` float ``[B, n_items]``, ``targets`` bool ``[B, n_items]``."""
        k = min(self.k, scores.shape[1])
        values, top = top_k(scores, k)
        hits = targets.gather(1, top) & torch.isfinite(values)
        n_true = targets.sum(1)
        has = (n_true > 0).cpu().numpy()
        per_user = metrics_from_hits(hits.cpu().numpy(), n_true.cpu().numpy(), [k])
        for name in METRIC_NAMES:
            state = getattr(self, _state(f"{name}@{self.k}"))
            state += float(per_user[f"{name}@{k}"][has].sum())
        self.users += float(has.sum())

    def compute(self) -> dict[str, Tensor]:
        """``{"recall": mean, "ndcg": ..., "hitrate", "mrr", "map", "users": count}`` (float64)."""
        n = self.users.clamp(min=1.0)
        out = {name: getattr(self, _state(f"{name}@{self.k}")) / n for name in METRIC_NAMES}
        return {**out, "users": self.users.clone()}


def _state(name: str) -> str:
    return name.replace("@", "_at_")


def popularity_baseline(tables: FeatureTables, targets: EvalTargets, k: int, exclude_history: bool,
                        cold_only: bool = False) -> dict[str, float]:
    """Validation metrics at ``k`` of ranking items by training popularity, under the protocol's
    exclusion rule (``exclude_history``: each user's training items removed)."""
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
        scores = count.expand(len(rows), -1)
        if exclude_history:
            scores = scores.masked_fill(seen_matrix(users, offsets, seq, len(count)), float("-inf"))
        metric.update(scores, dense)
    return {key: float(value) for key, value in metric.compute().items()}
