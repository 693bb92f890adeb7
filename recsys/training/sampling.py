"""Whole-batch index sampling: the loader yields index arrays, never single examples."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[np.ndarray]):
    """Yields arrays of ``batch_size`` indices in ``[0, n)``, reshuffled each epoch.

    Under DDP each rank takes every ``world_size``-th index of the shared permutation; with
    ``equal_shards`` all ranks see the same number of batches (needed for training).
    Lightning calls :meth:`set_epoch` before every epoch.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        rank: int = 0,
        world_size: int = 1,
        equal_shards: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.equal_shards = equal_shards
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.equal_shards and self.world_size > 1:
            order = order[: self.n - self.n % self.world_size]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        idx = self._indices()
        stop = len(idx) - len(idx) % self.batch_size if self.drop_last else len(idx)
        for start in range(0, stop, self.batch_size):
            yield idx[start : start + self.batch_size]

    def __len__(self) -> int:
        n = len(self._indices())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def sample_negatives(
    count: int, distribution: str, item_prob: Tensor, item_cdf: Tensor,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """``count`` extra negatives (with replacement) and their sampling probabilities [n_items]:
    ``uniform`` over the catalogue or ``popularity`` (training frequency, drawn by inverting
    ``item_cdf``, the float64 cumulative sum of ``item_prob`` computed once)."""
    device, n_items = item_prob.device, item_prob.shape[0]
    if distribution == "uniform":
        probs = torch.full((n_items,), 1.0 / n_items, device=device)
        ids = torch.randint(n_items, (count,), device=device, generator=generator)
    elif distribution == "popularity":
        probs = item_prob
        u = torch.rand(count, device=device, generator=generator, dtype=item_cdf.dtype)
        ids = torch.searchsorted(item_cdf, u * item_cdf[-1]).clamp(max=n_items - 1)
    else:
        raise ValueError(f"unknown negative distribution {distribution!r} (uniform, popularity)")
    return ids, probs
