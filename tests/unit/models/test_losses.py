"""Losses against hand computations (plain Python loops over floats)."""

from __future__ import annotations

import math

import pytest
import torch

from recsys.errors import ConfigError
from recsys.models.losses import (
    BPRLoss,
    CosineContrastiveLoss,
    FullSoftmaxLoss,
    FullSquaredLoss,
    SampledSoftmaxLoss,
    log_expected_count,
)


def _vectors(seed: int, rows: int, dim: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=g), dim=-1)


def _hand_softmax(u: torch.Tensor, cands: torch.Tensor, cand_ids: list[int], pos_ids: list[int],
                  tau: float, logq: list[float]) -> float:
    """Mean over rows of -log softmax of the positive, accidental hits left out, logQ applied."""
    total = 0.0
    for i, pid in enumerate(pos_ids):
        logits = []
        for j, cid in enumerate(cand_ids):
            if j != i and cid == pid:
                continue  # accidental hit
            s = sum(float(a) * float(b) for a, b in zip(u[i], cands[j], strict=True))
            logits.append((j, s / tau - logq[j]))
        top = max(v for _, v in logits)
        log_z = top + math.log(sum(math.exp(v - top) for _, v in logits))
        total += log_z - dict(logits)[i]
    return total / len(pos_ids)


def test_logq_corrected_softmax_equals_hand_computation() -> None:
    u, v = _vectors(0, 4), _vectors(1, 4)
    ids = torch.tensor([3, 7, 3, 1])  # item 3 twice: an accidental hit for rows 0 and 2
    freq = torch.tensor([0.0, 0.1, 0.0, 0.5, 0.0, 0.0, 0.0, 0.4])
    logq = log_expected_count(freq[ids], None, batch_size=4, num_negatives=0)
    assert torch.allclose(logq, torch.log(4 * freq[ids]))
    loss = SampledSoftmaxLoss()(u, v, ids, torch.tensor(0.1), logq)
    expected = _hand_softmax(u, v, ids.tolist(), ids.tolist(), 0.1, logq.tolist())
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mixed_negatives_use_expected_counts_of_both_samplers() -> None:
    u, v, neg = _vectors(2, 3), _vectors(3, 3), _vectors(4, 2)
    ids, neg_ids = torch.tensor([0, 1, 2]), torch.tensor([2, 4])  # negative 2 hits row 2
    freq = torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0])
    uniform = torch.full((5,), 0.2)
    cand = torch.cat([ids, neg_ids])
    logq = log_expected_count(freq[cand], uniform[cand], batch_size=3, num_negatives=2)
    hand = [math.log(3 * float(freq[c]) + 2 * 0.2) for c in cand.tolist()]
    assert logq.tolist() == pytest.approx(hand, abs=1e-6)
    loss = SampledSoftmaxLoss()(u, v, ids, torch.tensor(0.2), logq, neg, neg_ids)
    expected = _hand_softmax(u, torch.cat([v, neg]), cand.tolist(), ids.tolist(), 0.2, hand)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_accidental_hits_change_the_loss_only_when_removed() -> None:
    u, v = _vectors(5, 3), _vectors(6, 3)
    v[2] = v[0]  # the same item twice in the batch
    ids = torch.tensor([9, 4, 9])
    kept = SampledSoftmaxLoss(logq_correction=False, remove_accidental_hits=False)
    removed = SampledSoftmaxLoss(logq_correction=False, remove_accidental_hits=True)
    tau = torch.tensor(0.5)
    zeros = [0.0, 0.0, 0.0]
    assert kept(u, v, ids, tau).item() == pytest.approx(
        _hand_softmax(u, v, [0, 1, 2], [0, 1, 2], 0.5, zeros), rel=1e-5)  # ids all distinct
    assert removed(u, v, ids, tau).item() == pytest.approx(
        _hand_softmax(u, v, ids.tolist(), ids.tolist(), 0.5, zeros), rel=1e-5)
    assert removed(u, v, ids, tau).item() < kept(u, v, ids, tau).item()


def test_bpr_equals_mean_softplus_over_valid_pairs() -> None:
    u, v = _vectors(7, 3), _vectors(8, 3)
    ids = torch.tensor([1, 2, 1])
    loss = BPRLoss()(u, v, ids, torch.tensor(1.0))
    s = (u @ v.T).tolist()
    terms = [math.log1p(math.exp(s[i][j] - s[i][i]))
             for i in range(3) for j in range(3) if j != i and ids[j] != ids[i]]
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_logq_correction_requires_counts() -> None:
    with pytest.raises(ValueError, match="candidate_logq"):
        SampledSoftmaxLoss()(_vectors(0, 2), _vectors(1, 2), torch.tensor([0, 1]),
                             torch.tensor(0.1))


@pytest.mark.parametrize("in_batch", [True, False])
def test_cosine_contrastive_equals_hand_computation(in_batch: bool) -> None:
    u, v, n = _vectors(0, 3), _vectors(1, 3), _vectors(2, 2)
    ids, neg_ids = torch.tensor([3, 7, 3]), torch.tensor([5, 7])
    margin, weight = 0.1, 2.0
    cands, cand_ids = torch.cat([v, n]), [3, 7, 3, 5, 7]
    total = 0.0
    for i, pid in enumerate(ids.tolist()):
        cos = [sum(float(a) * float(b) for a, b in zip(u[i], c, strict=True)) for c in cands]
        negs = [max(0.0, cos[j] - margin) for j, cid in enumerate(cand_ids)
                if j != i and cid != pid and (in_batch or j >= 3)]
        total += (1 - cos[i]) + weight * sum(negs) / max(len(negs), 1)
    loss = CosineContrastiveLoss(margin=margin, negative_weight=weight, in_batch=in_batch)(
        u, v, ids, torch.tensor(0.05), None, n, neg_ids)
    assert loss.item() == pytest.approx(total / 3, rel=1e-5)
    with pytest.raises(ValueError, match="margin"):
        CosineContrastiveLoss(margin=1.5, negative_weight=1.0)


def test_full_softmax_equals_hand_computation_with_other_positives_masked() -> None:
    u, items = _vectors(11, 3), _vectors(12, 5)
    pos = torch.tensor([1, 4, 1])
    others = torch.zeros(3, 5, dtype=torch.bool)
    others[0, [1, 2]] = True  # row 0's target and another positive (masked)
    others[1, [0, 4]] = True
    tau = 0.2
    expected = 0.0
    for i in range(3):
        logits = {j: float(u[i] @ items[j]) / tau for j in range(5)
                  if j == int(pos[i]) or not bool(others[i, j])}
        log_z = math.log(sum(math.exp(v) for v in logits.values()))
        expected += (log_z - logits[int(pos[i])]) / 3
    got = FullSoftmaxLoss()(u, items, pos, torch.tensor(tau), others)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    unmasked = FullSoftmaxLoss(mask_other_positives=False)(u, items, pos, torch.tensor(tau), others)
    assert float(unmasked) > float(got)  # the masked positives were competing


def test_full_softmax_can_leave_unseen_items_out_of_the_negatives() -> None:
    u, items = _vectors(21, 2), _vectors(22, 6)
    pos = torch.tensor([0, 3])
    unseen = torch.tensor([False, False, True, False, True, False])
    tau = 0.5
    expected = 0.0
    for i in range(2):
        logits = [float(u[i] @ items[j]) / tau for j in range(6) if not bool(unseen[j])]
        target = float(u[i] @ items[int(pos[i])]) / tau
        expected += (math.log(sum(math.exp(v) for v in logits)) - target) / 2
    got = FullSoftmaxLoss(unseen_negatives=False)(u, items, pos, torch.tensor(tau), None, unseen)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    every = FullSoftmaxLoss()(u, items, pos, torch.tensor(tau), None, unseen)
    assert float(every) > float(got)  # by default unseen items are negatives too


def _hand_squared(u: torch.Tensor, items: torch.Tensor, targets: list[set[int]],
                  others: list[set[int]], unseen: set[int], weight: float, tau: float) -> float:
    """Mean over rows of the weighted squared error: targets to 1 with ``weight``, the row's
    other positives and unseen items skipped, every other item to 0 with weight 1."""
    total = 0.0
    for i, row_targets in enumerate(targets):
        for j in range(items.shape[0]):
            score = float(u[i] @ items[j]) / tau
            if j in row_targets:
                total += weight * (score - 1.0) ** 2
            elif j not in others[i] and j not in unseen:
                total += score ** 2
    return total / len(targets)


def test_full_squared_equals_hand_computation_for_one_and_several_targets() -> None:
    g = torch.Generator().manual_seed(31)
    u, items = torch.randn(3, 4, generator=g), torch.randn(6, 4, generator=g)
    others = torch.zeros(3, 6, dtype=torch.bool)
    others[0, [1, 2]] = True  # row 0's target (kept a target) and another positive (skipped)
    others[2, 5] = True
    other_sets = [{2}, set(), {5}]
    tau = 0.5
    got = FullSquaredLoss(positive_weight=3.0)(u, items, torch.tensor([1, 4, 0]),
                                              torch.tensor(tau), others)
    want = _hand_squared(u, items, [{1}, {4}, {0}], other_sets, set(), 3.0, tau)
    assert float(got) == pytest.approx(want, rel=1e-5)
    multi = torch.zeros(3, 6, dtype=torch.bool)
    multi[0, [0, 3]] = True
    multi[1, [4]] = True  # row 2 has no target: every non-history item fitted to 0
    unseen = torch.tensor([False, False, False, True, False, True])
    got = FullSquaredLoss(positive_weight=2.0, unseen_negatives=False)(
        u, items, multi, torch.tensor(tau), others, unseen)
    want = _hand_squared(u, items, [{0, 3}, {4}, set()], [{1, 2}, set(), {5}], {3, 5}, 2.0, tau)
    assert float(got) == pytest.approx(want, rel=1e-5)  # item 3 unseen but a target: fitted


def test_full_squared_refuses_a_non_positive_weight() -> None:
    with pytest.raises(ConfigError, match="positive_weight must be > 0"):
        FullSquaredLoss(positive_weight=0.0)
