"""Ranking metrics, batch sampling and the dense + sparse optimizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from recsys.errors import ConfigError
from recsys.training.optim import DenseSparseAdam, build_optimizer, warmup_cosine
from recsys.training.ranking import RankingMetrics, seen_matrix, target_matrix
from recsys.training.sampling import EpochBatchSampler, sample_negatives


def test_validation_metrics_match_hand_values() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5]])
    targets = target_matrix(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), 2, 5)
    metric = RankingMetrics(k=3)
    metric.update(scores, targets)
    metric.update(scores[:1], torch.zeros_like(targets[:1]))  # a user without targets: skipped
    out = metric.compute()
    # row 0: top3 = [0, 1, 3]; hit at rank 2 only of 2 targets; row 1: top3 = [4, 3, 2], none
    idcg = 1 + 1 / math.log2(3)
    assert out["recall"].item() == pytest.approx(0.25) and out["users"].item() == 2
    assert out["ndcg"].item() == pytest.approx((1 / math.log2(3)) / idcg / 2)
    assert out["mrr"].item() == pytest.approx(0.25) and out["hitrate"].item() == 0.5


def test_seen_matrix_gathers_each_users_items() -> None:
    offsets = torch.tensor([0, 2, 2, 5])
    items = torch.tensor([4, 1, 0, 3, 3])
    seen = seen_matrix(torch.tensor([2, 0, 1]), offsets, items, 6)
    assert seen.nonzero().tolist() == [[0, 0], [0, 3], [1, 1], [1, 4]]


def test_batches_cover_each_index_once_and_shard_across_ranks() -> None:
    shards = [list(EpochBatchSampler(103, 10, shuffle=True, seed=1, drop_last=True, rank=r,
                                     world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5
    flat = [np.concatenate(s) for s in shards]
    assert not set(flat[0]) & set(flat[1])
    full = EpochBatchSampler(103, 10, shuffle=True, seed=1, drop_last=False)
    assert sorted(np.concatenate(list(full)).tolist()) == list(range(103))
    assert len(full) == 11
    first = np.concatenate(list(full))
    full.set_epoch(1)
    assert not np.array_equal(first, np.concatenate(list(full)))


def test_popularity_negatives_follow_the_item_frequencies() -> None:
    prob = torch.tensor([0.7, 0.0, 0.3])
    cdf = torch.cumsum(prob.double(), 0)
    ids, probs = sample_negatives(5000, "popularity", prob, cdf, torch.Generator().manual_seed(0))
    counts = torch.bincount(ids, minlength=3).float() / 5000
    assert counts[1] == 0 and abs(counts[0].item() - 0.7) < 0.03
    assert torch.equal(probs, prob)
    _, uniform = sample_negatives(10, "uniform", prob, cdf, None)
    assert torch.allclose(uniform, torch.full((3,), 1 / 3))


def test_dense_sparse_optimizer_steps_both_and_round_trips() -> None:
    model = nn.Sequential(nn.Embedding(50, 4, sparse=True), nn.Linear(4, 1))
    opt = build_optimizer(model, lr=0.1, weight_decay=0.0)
    assert isinstance(opt, DenseSparseAdam)
    sched = warmup_cosine(opt, total_steps=10, warmup_fraction=0.2, min_factor=0.1)
    # warm-up of 2 steps: half the rate for the dense groups (decayed weights, the rest) and the
    # sparse optimizer
    assert [g["lr"] for g in opt.dense.param_groups + opt.sparse.param_groups] == [0.05] * 3
    before = [p.detach().clone() for p in model.parameters()]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = model(torch.tensor([3, 7])).sum()
        loss.backward()
        return loss

    opt.step(closure)
    sched.step()
    after = list(model.parameters())
    assert not torch.equal(before[0][3], after[0][3]) and torch.equal(before[0][5], after[0][5])
    assert not torch.equal(before[1], after[1])
    assert [g["lr"] for g in opt.dense.param_groups + opt.sparse.param_groups] == [0.1] * 3
    clone = build_optimizer(model, lr=0.1, weight_decay=0.0)
    clone.load_state_dict(opt.state_dict())
    assert clone.state_dict()["sparse"]["state"][0]["step"] == 1


def test_weight_decay_reaches_dense_weight_matrices_only() -> None:
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 3), nn.LayerNorm(3))
    opt = build_optimizer(model, lr=0.1, weight_decay=0.5)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[1].weight)}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    # without embedding decay: two groups, the undecayed one in module order, as before the
    # embedding decay existed (optimizer states saved then still load)
    ordered = nn.ModuleList([nn.LayerNorm(4), nn.Embedding(5, 4), nn.Linear(4, 3)])
    groups = build_optimizer(ordered, lr=0.1, weight_decay=0.5).param_groups
    rest = [p for p in ordered.parameters() if p is not ordered[2].weight]
    assert len(groups) == 2 and [id(p) for p in groups[1]["params"]] == [id(p) for p in rest]


def test_embedding_weight_decay_is_its_own_group_and_a_negative_decay_is_refused() -> None:
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 3), nn.LayerNorm(3))
    opt = build_optimizer(model, lr=0.1, weight_decay=0.5, embedding_weight_decay=0.01)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(model[0].weight)] == 0.01 and decay[id(model[1].weight)] == 0.5
    assert decay[id(model[1].bias)] == decay[id(model[2].weight)] == 0.0
    assert len(decay) == len(list(model.parameters()))
    before = model[0].weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradients: only the decoupled decay moves the table
    assert torch.allclose(model[0].weight, before * (1 - 0.1 * 0.01))
    with pytest.raises(ConfigError, match="embedding_weight_decay must be >= 0"):
        build_optimizer(model, lr=0.1, weight_decay=0.5, embedding_weight_decay=-1.0)
