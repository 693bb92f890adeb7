"""Retrieval losses over in-batch (and optional extra) negatives.

Candidates for row ``i`` are every positive item of the batch plus ``M`` extra sampled items.
Sampled softmax subtracts from each candidate's logit the log of its expected number of draws
(logQ correction, Yi et al. 2019; with mixed negatives, Yang et al. 2020):
``log(B * q_j + M * r_j)`` where ``q`` is the item frequency in the training positives and ``r``
the extra-negative distribution. Candidates equal to row ``i``'s positive item (other than the
positive itself) are accidental hits and are masked out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.errors import ConfigError


def log_expected_count(
    freq: Tensor, neg_prob: Tensor | None, batch_size: int, num_negatives: int
) -> Tensor:
    """log(B * q_j + M * r_j) for candidate items with in-batch probability ``freq`` (q_j) and
    extra-negative probability ``neg_prob`` (r_j; ignored when ``num_negatives`` is 0)."""
    expected = batch_size * freq.double()
    if neg_prob is not None and num_negatives > 0:
        expected = expected + num_negatives * neg_prob.double()
    return torch.log(expected.clamp(min=1e-30)).to(freq.dtype)


def candidate_logits(
    user: Tensor,
    pos: Tensor,
    pos_ids: Tensor,
    temperature: Tensor,
    neg: Tensor | None,
    neg_ids: Tensor | None,
    remove_accidental_hits: bool,
) -> tuple[Tensor, Tensor]:
    """Logits [B, B + M] of every user against every candidate (the positive of row ``i`` in
    column ``i``), and the mask of accidental hits: other candidates equal to row ``i``'s
    positive (all False unless ``remove_accidental_hits``)."""
    items, ids = pos, pos_ids
    if neg is not None and neg_ids is not None:
        items, ids = torch.cat([pos, neg]), torch.cat([pos_ids, neg_ids])
    logits = (user @ items.T).float() / temperature.float()
    if not remove_accidental_hits:
        return logits, torch.zeros_like(logits, dtype=torch.bool)
    hits = ids.unsqueeze(0) == pos_ids.unsqueeze(1)
    diag = torch.arange(user.shape[0], device=logits.device)
    hits[diag, diag] = False
    return logits, hits


def catalogue_scores(user: Tensor, catalogue: Tensor, targets: Tensor, temperature: Tensor
                     ) -> tuple[Tensor, Tensor]:
    """Scores [B, n_items] of every row against the whole ``catalogue`` and the bool target
    matrix of ``targets`` ([B] item ids, or already a bool [B, n_items])."""
    logits = (user @ catalogue.T).float() / temperature.float()
    dense = targets if targets.dtype == torch.bool else torch.zeros_like(
        logits, dtype=torch.bool).scatter_(1, targets.unsqueeze(1), True)
    return logits, dense


class SampledSoftmaxLoss(nn.Module):
    """Cross-entropy of each user's positive against the candidates, with optional logQ."""

    def __init__(self, logq_correction: bool = True, remove_accidental_hits: bool = True) -> None:
        super().__init__()
        self.logq_correction = logq_correction
        self.remove_accidental_hits = remove_accidental_hits

    def forward(
        self,
        user: Tensor,
        pos: Tensor,
        pos_ids: Tensor,
        temperature: Tensor,
        candidate_logq: Tensor | None = None,
        neg: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        """``candidate_logq`` [B + M]: log expected count of each candidate (see module doc)."""
        logits, hits = candidate_logits(
            user, pos, pos_ids, temperature, neg, neg_ids, self.remove_accidental_hits
        )
        if self.logq_correction:
            if candidate_logq is None:
                raise ValueError("logQ correction needs candidate_logq")
            logits = logits - candidate_logq.float().unsqueeze(0)
        logits = logits.masked_fill(hits, float("-inf"))
        return F.cross_entropy(logits, torch.arange(user.shape[0], device=logits.device))


class BPRLoss(nn.Module):
    """Bayesian personalised ranking: mean softplus(s_neg - s_pos) over valid negatives."""

    def __init__(self, remove_accidental_hits: bool = True) -> None:
        super().__init__()
        self.remove_accidental_hits = remove_accidental_hits

    def forward(
        self,
        user: Tensor,
        pos: Tensor,
        pos_ids: Tensor,
        temperature: Tensor,
        candidate_logq: Tensor | None = None,
        neg: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        logits, hits = candidate_logits(
            user, pos, pos_ids, temperature, neg, neg_ids, self.remove_accidental_hits
        )
        diag = torch.arange(user.shape[0], device=logits.device)
        margin = F.softplus(logits - logits[diag, diag].unsqueeze(1))
        valid = ~hits
        valid[diag, diag] = False  # the positive is not its own negative
        weight = valid.to(margin.dtype)
        return (margin * weight).sum() / weight.sum().clamp(min=1.0)


class CosineContrastiveLoss(nn.Module):
    """SimpleX's cosine contrastive loss (Mao et al. 2021): ``1 - cos(u, pos)`` plus
    ``negative_weight`` times the mean over each row's valid negatives of
    ``relu(cos(u, neg) - margin)``. Tower outputs are unit vectors, so the cosine is the logit
    times the temperature; the temperature itself plays no part. Without ``in_batch`` the
    negatives are the sampled ones only (SimpleX draws them uniformly): in-batch negatives follow
    popularity, and without a logQ term pushing them away ranks popular items down."""

    def __init__(self, margin: float, negative_weight: float,
                 remove_accidental_hits: bool = True, in_batch: bool = True) -> None:
        super().__init__()
        if not -1.0 <= margin <= 1.0 or negative_weight < 0:
            raise ValueError(f"cosine_contrastive needs -1 <= margin <= 1 and negative_weight "
                             f">= 0, got {margin}, {negative_weight}")
        self.margin, self.negative_weight = float(margin), float(negative_weight)
        self.remove_accidental_hits, self.in_batch = remove_accidental_hits, in_batch

    def forward(
        self,
        user: Tensor,
        pos: Tensor,
        pos_ids: Tensor,
        temperature: Tensor,
        candidate_logq: Tensor | None = None,
        neg: Tensor | None = None,
        neg_ids: Tensor | None = None,
    ) -> Tensor:
        one = torch.ones((), device=user.device)
        cos, hits = candidate_logits(user, pos, pos_ids, one, neg, neg_ids,
                                     self.remove_accidental_hits)
        diag = torch.arange(user.shape[0], device=cos.device)
        valid = ~hits
        valid[diag, diag] = False
        if not self.in_batch:
            if neg is None:
                raise ValueError("cosine_contrastive without in_batch needs sampled negatives "
                                 "(model.system.num_negatives > 0)")
            valid[:, : user.shape[0]] = False
        weight = valid.to(cos.dtype)
        push = (F.relu(cos - self.margin) * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        return ((1.0 - cos[diag, diag]) + self.negative_weight * push).mean()


class FullSoftmaxLoss(nn.Module):
    """Cross-entropy of each row's positive(s) against the whole catalogue (no sampling, so no
    logQ correction: every item is a negative exactly once). ``targets`` is either [B] item ids
    or a bool [B, n_items] of several targets per row (the mean of their -log softmax, as in
    Mult-DAE). ``other_positives`` [B, n_items] masks the row's other positives, which are not
    negatives (with ``mask_other_positives``). ``unseen_negatives: false`` leaves the items
    without a training positive (``unseen`` [n_items]) out of every row's negatives: the model is
    then never taught to push never-bought items down, which content features (unique image
    vectors above all) would otherwise learn to single out, so cold items keep the scores their
    content earns. Affordable while ``B x n_items`` logits fit: catalogues above ``max_items``
    are refused (use sampled_softmax there)."""

    full_catalogue = True

    def __init__(self, mask_other_positives: bool = True, max_items: int = 200_000,
                 unseen_negatives: bool = True) -> None:
        super().__init__()
        self.mask_other_positives, self.max_items = mask_other_positives, int(max_items)
        self.unseen_negatives = bool(unseen_negatives)

    def forward(self, user: Tensor, catalogue: Tensor, targets: Tensor, temperature: Tensor,
                other_positives: Tensor | None = None, unseen: Tensor | None = None) -> Tensor:
        """``catalogue`` [n_items, dim]: every item's vector."""
        logits, dense = catalogue_scores(user, catalogue, targets, temperature)
        if self.mask_other_positives and other_positives is not None:
            logits = logits.masked_fill(other_positives & ~dense, float("-inf"))
        if not self.unseen_negatives and unseen is not None:
            logits = logits.masked_fill(unseen.unsqueeze(0) & ~dense, float("-inf"))
        if targets.dtype != torch.bool:
            return F.cross_entropy(logits, targets)
        log_p = torch.log_softmax(logits, dim=1)
        weight = dense.to(log_p.dtype)
        per_row = -(log_p.masked_fill(~dense, 0.0) * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        has = dense.any(1)
        return per_row[has].mean() if bool(has.any()) else per_row.sum() * 0.0


class FullSquaredLoss(nn.Module):
    """Weighted squared error of every row's scores against the whole catalogue, the objective
    of EASE and of the emphasised denoising linear autoencoder (Steck 2019, 2020): each score
    ``logit`` is fitted to 1 for the row's target(s), with weight ``positive_weight``, and to 0
    for every other item, with weight 1. The row's other positives (``other_positives``: the
    history the user tower read, with ``mask_other_positives``) weigh 0, so an item is never
    fitted from itself (EASE's zero diagonal); ``unseen_negatives: false`` gives the items
    without a training positive weight 0 too. Meant for unnormalised towers
    (``model.net.item_tower.normalize: false``, temperature fixed at 1): scores then carry item
    popularity in their scale, which cosine scores cannot. ``targets`` and the other arguments
    are those of :class:`FullSoftmaxLoss`; the loss is the mean over rows of the weighted sum
    over items."""

    full_catalogue = True

    def __init__(self, positive_weight: float = 1.0, mask_other_positives: bool = True,
                 max_items: int = 200_000, unseen_negatives: bool = True) -> None:
        super().__init__()
        if not positive_weight > 0:
            raise ConfigError(f"model.loss.positive_weight must be > 0, got {positive_weight}",
                              column="model.loss.positive_weight")
        self.positive_weight = float(positive_weight)
        self.mask_other_positives, self.max_items = mask_other_positives, int(max_items)
        self.unseen_negatives = bool(unseen_negatives)

    def forward(self, user: Tensor, catalogue: Tensor, targets: Tensor, temperature: Tensor,
                other_positives: Tensor | None = None, unseen: Tensor | None = None) -> Tensor:
        """``catalogue`` [n_items, dim]: every item's vector."""
        logits, dense = catalogue_scores(user, catalogue, targets, temperature)
        weight = torch.ones_like(logits)
        if self.mask_other_positives and other_positives is not None:
            weight = weight.masked_fill(other_positives & ~dense, 0.0)
        if not self.unseen_negatives and unseen is not None:
            weight = weight.masked_fill(unseen.unsqueeze(0) & ~dense, 0.0)
        weight = weight.masked_fill(dense, self.positive_weight)
        return (weight * (logits - dense.to(logits.dtype)).square()).sum(1).mean()
