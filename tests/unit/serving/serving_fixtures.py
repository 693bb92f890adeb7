"""A small model with a TorchScript-able user tower, implementing the trained-model interface."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.evaluation.toy import ToyDataset
from recsys.serving import ExportSettings

HISTORY_LEN = 4


def export_settings(**overrides: Any) -> ExportSettings:
    """Export settings of the tests (small batches, every split as purchase history)."""
    values: dict[str, Any] = {"batch_size": 16, "history_splits": ("train", "val", "test"),
                              "item_columns": None, "user_tower": True}
    return ExportSettings(**{**values, **overrides})


class ToyTower(nn.Module):
    """Takes the tower inputs (ids, cat, num, hist_items, hist_age, social, social_mask)."""

    def __init__(self, n_ids: int, cat_sizes: list[int], n_num: int, n_items: int, dim: int):
        super().__init__()
        self.ids = nn.Embedding(n_ids, dim)
        self.cats = nn.ModuleList([nn.Embedding(s, dim) for s in cat_sizes])
        self.num = nn.Linear(n_num, dim)
        self.hist = nn.Embedding(n_items + 1, dim, padding_idx=0)

    def forward(self, ids: Tensor, cat: Tensor, num: Tensor, hist_items: Tensor,
                hist_age: Tensor, social: Tensor, social_mask: Tensor) -> Tensor:
        x = self.ids(ids) + self.num(num) + self.hist(hist_items).sum(1)
        for i, emb in enumerate(self.cats):
            x = x + emb(cat[:, i])
        return F.normalize(x, dim=-1)


class ToyModel:
    """Implements the trained-model interface retrieval and serving rely on."""

    similarity = "cosine"

    def __init__(self, ds: ToyDataset, dim: int = 8) -> None:
        torch.manual_seed(0)
        self.ds = ds
        self.tower = ToyTower(len(ds.users) + 1, [3, 4], 1, len(ds.items), dim).eval()
        rng = np.random.default_rng(0)
        self.items_without_image = rng.normal(size=(len(ds.items), dim)).astype(np.float32)
        self.image_part = 0.5 * rng.normal(size=(len(ds.items), dim)).astype(np.float32)
        self.items = self.items_without_image + self.image_part
        train = ds.train.sort_values(["user_idx", "timestamp"])
        self.history = {int(u): (g["item_idx"].to_numpy()[:HISTORY_LEN] + 1)
                        for u, g in train.groupby("user_idx")}
        self.config: dict[str, Any] = {"schema": {"history_len": HISTORY_LEN, "social_len": 0,
                                                  "social_dim": 0}}
        self.dataset_dir = ds.path

    def item_embeddings(self, batch_size: int) -> np.ndarray:
        return self.items

    def user_embeddings(self, user_idx: np.ndarray) -> np.ndarray:
        return self.ablated_user_embeddings(user_idx, ())

    def ablated_user_embeddings(self, user_idx: np.ndarray, drop: Any, batch_size: int = 16
                                ) -> np.ndarray:
        users = self.ds.users.set_index("user_idx").loc[user_idx]
        b = len(user_idx)
        hist = np.zeros((b, HISTORY_LEN), dtype=np.int64)
        if "behaviour" not in drop:
            for row, u in enumerate(user_idx):
                h = self.history.get(int(u), np.zeros(0, np.int64))
                hist[row, : len(h)] = h
        inputs = (torch.as_tensor(user_idx + 1),
                  torch.as_tensor(np.array(users[["gender_idx", "region_idx"]], dtype=np.int64)),
                  torch.as_tensor(np.array(users[["age_z"]], dtype=np.float32)),
                  torch.as_tensor(hist),
                  torch.zeros((b, HISTORY_LEN)), torch.zeros((b, 0, 0)),
                  torch.zeros((b, 0), dtype=torch.bool))
        with torch.no_grad():
            return self.tower(*inputs).numpy()

    def user_tower_for_export(self) -> nn.Module:
        return self.tower

    def ablated_item_embeddings(self, drop: Any, batch_size: int = 16) -> np.ndarray:
        return self.items_without_image if "image" in drop else self.items
