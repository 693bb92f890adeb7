"""Feature tables as device buffers, gathered per batch on the device (batches carry indices).

The buffers are non-persistent: checkpoints hold only the model's weights and the tables are
rebuilt from the processed dataset (and the image-feature cache) when a checkpoint is loaded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from recsys.models.inputs import ItemInputs, UserInputs
from recsys.models.two_tower import TwoTowerModel
from recsys.training.tables import FeatureTables


class FeatureStore(nn.Module):
    """Gathers :class:`UserInputs` / :class:`ItemInputs` for index tensors."""

    user_bucket: Tensor
    user_cat: Tensor
    user_num: Tensor
    seq_items: Tensor
    seq_users: Tensor
    seq_days: Tensor
    seq_basket_start: Tensor
    user_offsets: Tensor
    social_start: Tensor
    social_count: Tensor
    social_features: Tensor
    item_bucket: Tensor
    item_cat: Tensor
    item_multi: Tensor
    item_num: Tensor
    item_image: Tensor
    item_image_mask: Tensor
    item_prob: Tensor
    item_cdf: Tensor
    steps: Tensor

    def __init__(self, tables: FeatureTables, image_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.history_len = tables.schema.history_len
        self.social_len = tables.schema.social_len
        self.n_items = tables.schema.n_items
        self.timestamped = tables.timestamped
        social = tables.social_features
        if social.shape[0] == 0:
            social = np.zeros((1, social.shape[1]), dtype=np.float32)
        count = tables.item_count
        arrays: dict[str, np.ndarray] = {
            "user_bucket": tables.user_bucket, "user_cat": tables.user_cat,
            "user_num": tables.user_num, "seq_items": tables.seq_items,
            "seq_users": tables.seq_users, "seq_days": tables.seq_days.astype(np.float32),
            "seq_basket_start": tables.seq_basket_start, "user_offsets": tables.user_offsets,
            "social_start": tables.social_start, "social_count": tables.social_count,
            "item_bucket": tables.item_bucket, "item_cat": tables.item_cat,
            "item_multi": tables.item_multi, "item_num": tables.item_num,
            "item_image_mask": tables.item_image_mask,
            "item_prob": (count / max(count.sum(), 1.0)).astype(np.float32),
        }
        arrays["item_cdf"] = np.cumsum(arrays["item_prob"], dtype=np.float64)  # negative sampling
        for name, value in arrays.items():
            self.register_buffer(name, torch.tensor(np.asarray(value)),
                                 persistent=False)
        self.register_buffer("social_features", torch.tensor(social, dtype=image_dtype),
                             persistent=False)
        self.register_buffer("item_image", torch.tensor(tables.item_image, dtype=image_dtype),
                             persistent=False)
        self.register_buffer("steps", torch.arange(max(self.history_len, self.social_len, 1)),
                             persistent=False)
        self.eval_cutoff: dict[str, float] = {}
        # buffer names of (items, days, offsets) per evaluated split; a history that is the
        # training sequence (val's by default) reads the seq buffers instead of a second copy
        self._history_buffers: dict[str, tuple[str, str, str]] = {}
        for split, hist in tables.eval_history.items():
            self.eval_cutoff[split] = hist.cutoff_days
            if hist.splits == tables.fit_splits:  # the training sequence itself (build_tables)
                self._history_buffers[split] = ("seq_items", "seq_days", "user_offsets")
                continue
            names = (f"{split}_hist_items", f"{split}_hist_days", f"{split}_hist_offsets")
            for name, value in zip(names, (hist.items, hist.days.astype(np.float32),
                                           hist.offsets), strict=True):
                self.register_buffer(name, torch.tensor(np.asarray(value)), persistent=False)
            self._history_buffers[split] = names

    def history_arrays(self, split: str) -> tuple[Tensor, Tensor, Tensor]:
        """(items, days, offsets) of the history users of ``split`` (val / test) read."""
        if split not in self._history_buffers:
            raise KeyError(f"no evaluation history for split {split!r}")
        items, days, offsets = self._history_buffers[split]
        return getattr(self, items), getattr(self, days), getattr(self, offsets)

    def _history(self, users: Tensor, end: Tensor, ref_days: Tensor,
                 seq: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        items_seq, days_seq, offsets = seq or (self.seq_items, self.seq_days, self.user_offsets)
        steps = self.steps[: self.history_len]
        idx = end.unsqueeze(1) - 1 - steps  # most recent first
        valid = idx >= offsets[users].unsqueeze(1)
        if len(items_seq) == 0:
            return torch.zeros_like(idx), torch.zeros_like(idx, dtype=torch.float32)
        idx = idx.clamp(min=0)  # < end <= len(items_seq) already
        items = torch.where(valid, items_seq[idx] + 1, 0)
        age = (ref_days.unsqueeze(1) - days_seq[idx]).clamp(min=0.0)
        return items, torch.log1p(age) * valid

    def _social(self, users: Tensor) -> tuple[Tensor, Tensor]:
        steps = self.steps[: self.social_len]
        idx = self.social_start[users].unsqueeze(1) + steps
        valid = steps < self.social_count[users].unsqueeze(1)
        idx = idx.clamp(max=self.social_features.shape[0] - 1)
        feats = self.social_features[idx] * valid.unsqueeze(-1).to(self.social_features.dtype)
        return feats.float(), valid

    def _users(self, users: Tensor, end: Tensor, ref_days: Tensor,
               seq: tuple[Tensor, Tensor, Tensor] | None = None) -> UserInputs:
        hist, age = self._history(users, end, ref_days, seq)
        social, social_mask = self._social(users)
        return UserInputs(self.user_bucket[users], self.user_cat[users], self.user_num[users],
                          hist, age, social, social_mask)

    def user_inputs(self, users: Tensor, split: str = "test") -> UserInputs:
        """Features of users evaluated on ``split`` (val / test): their history is every
        positive of that split's history splits, as of the end of that history."""
        seq = self.history_arrays(split)
        end = seq[2][users + 1]
        ref = torch.full_like(users, 0, dtype=torch.float32) + self.eval_cutoff[split]
        return self._users(users, end, ref, seq)

    def train_inputs(self, pos: Tensor) -> tuple[UserInputs, Tensor]:
        """For training positions ``pos``: user features as of that basket (on data without
        timestamps: with a random subset of the user's other positives as history, see
        :meth:`_other_positives`), and the item idx."""
        users = self.seq_users[pos]
        inputs = self._users(users, self.seq_basket_start[pos], self.seq_days[pos])
        if not self.timestamped:
            inputs = inputs._replace(hist_items=self._other_positives(users, pos),
                                     hist_age=torch.zeros_like(inputs.hist_age))
        return inputs, self.seq_items[pos]

    def _other_positives(self, users: Tensor, pos: Tensor) -> Tensor:
        """[B, history_len] item idx + 1 of up to ``history_len`` of each user's training
        positives other than position ``pos`` (uniformly at random, without replacement; all of
        them when there are fewer), real entries first, 0 = padding."""
        start = self.user_offsets[users]
        others = self.user_offsets[users + 1] - start - 1
        width = int(others.max()) if len(users) else 0
        out = torch.zeros(len(users), self.history_len, dtype=torch.long, device=pos.device)
        if width < 1:
            return out
        keys = torch.rand(len(users), width, device=pos.device)
        steps = torch.arange(width, device=pos.device).unsqueeze(0)
        keys = keys.masked_fill(steps >= others.unsqueeze(1), -1.0)
        top, rank = keys.topk(min(width, self.history_len), dim=1)
        rank = rank + (rank >= (pos - start).unsqueeze(1)).long()  # skip the target itself
        idx = (start.unsqueeze(1) + rank).clamp(max=len(self.seq_items) - 1)
        items = torch.where(top >= 0, self.seq_items[idx] + 1, 0)
        out[:, : items.shape[1]] = items
        return out

    def sequence_targets(self, users: Tensor, random_end: bool = False
                         ) -> tuple[UserInputs, Tensor, Tensor, Tensor]:
        """One-pass sequence examples (``datamodule.examples: sequence``, timestamped data):
        each user's latest ``history_len`` training positives, most recent first, are the
        encoder's input, and each of them is a target whose history is in that window. Target at
        window position ``i`` reads the history starting at the first position of the previous
        basket (the encoder's state there covers exactly the purchases before the target's
        basket: nothing of its own basket or later); a purchase of the user's first basket has
        no history (start -1: an empty history, as the per-position path gives it). Returns the
        users' inputs (ages before each user's last training day), and per target its batch row,
        that start position and its training position. ``random_end``: each window ends after a
        uniformly drawn positive of the user instead of the latest one, so over the epochs every
        positive is a target, not only the latest ``history_len`` (nothing after the window's end
        is read)."""
        end = self.user_offsets[users + 1]
        if random_end:
            count = end - self.user_offsets[users]
            draw = (torch.rand(len(users), device=users.device) * count).long()
            end = self.user_offsets[users] + 1 + torch.minimum(draw, count - 1)
        first = self.user_offsets[users].unsqueeze(1)
        inputs = self._users(users, end, self.seq_days[(end - 1).clamp(min=0)])
        steps = self.steps[: self.history_len].unsqueeze(0)
        idx = end.unsqueeze(1) - 1 - steps  # window position -> training position
        valid = idx >= first
        idx = idx.clamp(min=0)
        basket = self.seq_basket_start[idx]
        # the older basket starts at window position end - basket_start (see the doc)
        at = end.unsqueeze(1) - basket
        opening = valid & (basket == first)  # the user's first basket: an empty history
        target = valid & ((at < self.history_len) | opening)
        at = torch.where(opening, -1, at.clamp(max=self.history_len - 1))
        rows, cols = target.nonzero(as_tuple=True)
        return inputs, rows, at[rows, cols], idx[rows, cols]

    def split_users(self, users: Tensor, keep_fraction: float
                    ) -> tuple[UserInputs, Tensor, Tensor]:
        """User examples (``datamodule.examples: user``): each user's training positives in a
        fresh random order; the first ``floor(keep_fraction * n)`` (at most ``history_len``, at
        most ``n - 1``) are the history, the rest the targets. Returns the user inputs, the
        targets [B, n_items] (never an item of the history) and the history items [B, n_items].
        On timestamped data the history keeps the ages before the user's last training day."""
        start = self.user_offsets[users]
        count = self.user_offsets[users + 1] - start
        width = int(count.max()) if len(users) else 0
        steps = torch.arange(max(width, 1), device=users.device).unsqueeze(0)
        keys = torch.rand(len(users), max(width, 1), device=users.device)
        keys = keys.masked_fill(steps >= count.unsqueeze(1), 2.0)
        order = keys.argsort(dim=1)  # real entries first, in random order
        idx = (start.unsqueeze(1) + order).clamp(max=max(len(self.seq_items) - 1, 0))
        real = steps < count.unsqueeze(1)
        n_hist = torch.minimum((count.double() * keep_fraction).floor().long(), count - 1)
        n_hist = n_hist.clamp(min=0, max=self.history_len)
        in_hist = steps < n_hist.unsqueeze(1)
        items = self.seq_items[idx]
        rows = torch.arange(len(users), device=users.device).unsqueeze(1).expand_as(items)
        history = torch.zeros(len(users), self.n_items, dtype=torch.bool, device=users.device)
        history[rows[in_hist], items[in_hist]] = True
        targets = torch.zeros_like(history)
        target = real & ~in_hist
        targets[rows[target], items[target]] = True
        targets &= ~history  # a repeat purchase in the history is not a held-out target
        end = start + count
        inputs = self._users(users, end, self.seq_days[(end - 1).clamp(min=0)])
        hist_len = self.history_len
        pad = torch.zeros(len(users), max(hist_len - items.shape[1], 0), dtype=items.dtype,
                          device=items.device)
        hist_items = torch.where(in_hist, items + 1, 0)
        hist_items = torch.cat([hist_items, pad], 1)[:, :hist_len]
        age = torch.zeros(hist_items.shape, dtype=torch.float32, device=users.device)
        if self.timestamped:
            ref = self.seq_days[(end - 1).clamp(min=0)].unsqueeze(1)
            days = torch.cat([self.seq_days[idx], pad.float()], 1)[:, :hist_len]
            age = torch.log1p((ref - days).clamp(min=0.0)) * (hist_items > 0)
        return inputs._replace(hist_items=hist_items, hist_age=age), targets, history

    def item_inputs(self, items: Tensor) -> ItemInputs:
        """Features of items ``items`` (product-image features from the cache)."""
        return ItemInputs(self.item_bucket[items], self.item_cat[items], self.item_multi[items],
                          self.item_num[items], self.item_image[items].float(),
                          self.item_image_mask[items])


def history_vectors(net: TwoTowerModel, store: FeatureStore, hist_items: Tensor,
                    table: Tensor | None = None) -> Tensor | None:
    """What a shared-history user tower reads for ``hist_items`` [B, L] (item idx + 1, 0 =
    padding): rows of ``table`` (every item's :meth:`TwoTowerModel.history_items`) when given,
    else the item tower run once per distinct item of the batch. None for a separate table."""
    if not net.shared_history:
        return None
    if table is not None:
        return table[(hist_items - 1).clamp(min=0)]
    uniq, inverse = torch.unique(hist_items, return_inverse=True)
    vectors = net.history_items(store.item_inputs((uniq - 1).clamp(min=0)))
    return vectors[inverse]


def encode_users(net: TwoTowerModel, store: FeatureStore, users: Tensor, split: str = "test",
                 table: Tensor | None = None) -> Tensor:
    """User vectors of ``users`` evaluated on ``split`` (its protocol history)."""
    inputs = store.user_inputs(users, split)
    return net.user(inputs, history_vectors(net, store, inputs.hist_items, table))


@torch.no_grad()
def encode_history_table(net: TwoTowerModel, store: FeatureStore, batch_size: int = 8192
                         ) -> Tensor | None:
    """Every item's shared-history representation [n_items, item dim] (None without one)."""
    if not net.shared_history:
        return None
    device = store.item_bucket.device
    parts = [net.history_items(store.item_inputs(torch.arange(
        s, min(s + batch_size, store.n_items), device=device))).float()
        for s in range(0, store.n_items, batch_size)]
    return torch.cat(parts)


@torch.no_grad()
def encode_items(net: TwoTowerModel, store: FeatureStore, batch_size: int = 8192) -> Tensor:
    """Vectors of every item, float32 ``[n_items, dim]`` on the store's device, in batches."""
    device = store.item_bucket.device
    parts = [net.item(store.item_inputs(torch.arange(s, min(s + batch_size, store.n_items),
                                                      device=device))).float()
             for s in range(0, store.n_items, batch_size)]
    return torch.cat(parts)
