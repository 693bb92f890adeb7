"""In-batch negatives across ranks: two gloo processes, each with half of a global batch, give
the loss and the gradients of one process with the whole batch (recsys.training.gather)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from recsys.models.losses import SampledSoftmaxLoss, log_expected_count
from recsys.training.gather import with_other_ranks, world_size

B, N_ITEMS, DIM, M = 6, 10, 4, 3


def _world(seed: int = 0) -> tuple[nn.Linear, nn.Linear, Tensor, Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    user_net, item_net = nn.Linear(5, DIM), nn.Linear(5, DIM)
    with torch.no_grad():
        for p in [*user_net.parameters(), *item_net.parameters()]:
            p.copy_(torch.randn(p.shape, generator=g))
    users = torch.randn(2 * B, 5, generator=g)
    item_x = torch.randn(N_ITEMS, 5, generator=g)
    items = torch.randint(N_ITEMS, (2 * B,), generator=g)  # repeats: accidental hits
    prob = torch.rand(N_ITEMS, generator=g) + 0.1
    return user_net, item_net, users, item_x, items, prob / prob.sum(), torch.tensor(0.5)


def _loss(user_net: nn.Linear, item_net: nn.Linear, users: Tensor, item_x: Tensor,
          items: Tensor, prob: Tensor, temperature: Tensor, neg_ids: Tensor | None) -> Tensor:
    """One process's loss, through the system's path (with_other_ranks, then the logQ)."""
    u, v = user_net(users), item_net(item_x[items])
    neg = None if neg_ids is None else item_net(item_x[neg_ids])
    neg_prob = None if neg_ids is None else torch.full((N_ITEMS,), 1.0 / N_ITEMS)
    neg, cand_neg, global_batch = with_other_ranks(v, items, neg, neg_ids)
    cand = items if cand_neg is None else torch.cat([items, cand_neg])
    logq = log_expected_count(prob[cand], None if neg_prob is None else neg_prob[cand],
                              global_batch, 0 if neg_ids is None else len(neg_ids))
    return SampledSoftmaxLoss()(u, v, items, temperature, logq, neg, cand_neg)


def _grads(*nets: nn.Linear) -> list[Tensor]:
    return [p.grad.clone() for net in nets for p in net.parameters() if p.grad is not None]


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        user_net, item_net, users, item_x, items, prob, temperature = _world()
        half = slice(rank * B, (rank + 1) * B)
        loss = _loss(user_net, item_net, users[half], item_x, items[half], prob, temperature, None)
        loss.backward()
        grads = _grads(user_net, item_net)
        for g in grads:  # what DDP does: average the gradients over ranks
            dist.all_reduce(g)
            g /= 2
        loss_sum = loss.detach().clone()
        dist.all_reduce(loss_sum)
        torch.save({"loss": loss_sum / 2, "grads": grads, "world": world_size()},
                   Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_ranks_equal_one_process_with_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    user_net, item_net, users, item_x, items, prob, temperature = _world()
    loss = _loss(user_net, item_net, users, item_x, items, prob, temperature, None)
    loss.backward()
    expected = _grads(user_net, item_net)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["world"] == 2
        torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
        assert len(got["grads"]) == len(expected) == 4
        for g, e in zip(got["grads"], expected, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_one_process_leaves_the_candidates_alone() -> None:
    v, ids = torch.randn(B, DIM), torch.arange(B)
    neg, neg_ids = torch.randn(M, DIM), torch.arange(M)
    out = with_other_ranks(v, ids, neg, neg_ids)
    assert out.neg is neg and out.neg_ids is neg_ids and out.global_batch == B
    assert with_other_ranks(v, ids, None, None, in_batch=False) == (None, None, B)
