"""In-batch negatives across DDP ranks: every rank's rows score the positives of the whole
global batch, as one process with the same global batch would.

Each rank keeps its own rows (users) and adds the other ranks' positive item vectors to its
candidates through :func:`torch.distributed.nn.functional.all_gather`, whose backward sums the
gradients that every rank's loss sends to a rank's item vectors. With the gradient averaging of
DDP this gives the gradient of the mean of the per-rank losses, i.e. of the single-process loss
over the global batch (rows are equally many on every rank). Extra sampled negatives stay per
rank.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.nn.functional import all_gather


class Candidates(NamedTuple):
    """Candidates after the local positives (the loss's ``neg``/``neg_ids``), and the number of
    positives in the global batch (``B`` of the logQ correction)."""

    neg: Tensor | None
    neg_ids: Tensor | None
    global_batch: int


def world_size() -> int:
    """Processes in the default group (1 outside distributed training)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def with_other_ranks(pos: Tensor, pos_ids: Tensor, neg: Tensor | None,
                     neg_ids: Tensor | None, in_batch: bool = True) -> Candidates:
    """Prepend the other ranks' positives ``[(W-1)*B, dim]`` (and ids) to the extra negatives.

    Nothing changes on one process, or when the loss reads no in-batch negatives
    (``in_batch=False``). Every rank must call this with the same batch size.
    """
    world = world_size()
    if world == 1 or not in_batch:
        return Candidates(neg, neg_ids, len(pos_ids) * (world if in_batch else 1))
    rank = dist.get_rank()
    vectors = all_gather(pos.contiguous())
    ids = [torch.empty_like(pos_ids) for _ in range(world)]
    dist.all_gather(ids, pos_ids.contiguous())
    others = [r for r in range(world) if r != rank]
    other_vectors = torch.cat([vectors[r] for r in others])
    other_ids = torch.cat([ids[r] for r in others])
    if neg is not None and neg_ids is not None:
        other_vectors, other_ids = torch.cat([other_vectors, neg]), torch.cat([other_ids, neg_ids])
    return Candidates(other_vectors, other_ids, len(pos_ids) * world)
