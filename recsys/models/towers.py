"""User and item towers: feature blocks, fused and L2-normalised into one ``dim``-d vector.

Factories for pooling and fusion arrive as callables (Hydra ``_partial_`` targets): a pooling
factory is called as ``pooling(dim=...)``, a fusion factory as ``fusion(in_dims=..., out_dim=...)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.embeddings import CategoricalEmbedding, IdEmbedding, MultiHotEmbedding
from recsys.models.inputs import FeatureSchema

PoolingFactory = Callable[..., nn.Module]
FusionFactory = Callable[..., nn.Module]


class UserTower(nn.Module):
    """Hashed user id, demographics, purchase history and social-image features."""

    def __init__(
        self,
        schema: FeatureSchema,
        fusion: FusionFactory,
        dim: int,
        id_buckets: int,
        id_dim: int,
        id_dropout: float,
        cat_dim: int,
        use_demographics: bool,
        history_dim: int,
        history_pooling: PoolingFactory | None,
        social_dim: int,
        social_pooling: PoolingFactory | None,
        sparse_min_rows: int,
    ) -> None:
        super().__init__()
        self.out_dim = dim
        self.ids = IdEmbedding(id_buckets, id_dim, id_dropout, sparse=id_buckets >= sparse_min_rows)
        dims, names = [id_dim], ["id"]
        self.cat: CategoricalEmbedding | None = None
        self.use_num = use_demographics and schema.user_num > 0
        if use_demographics and schema.user_cat_sizes:
            self.cat = CategoricalEmbedding(schema.user_cat_sizes, cat_dim)
            dims.append(self.cat.out_dim)
            names.append("demographics")
        if self.use_num:
            dims.append(schema.user_num)
            names.append("demographics_numeric")
        self.hist_emb: nn.Embedding | None = None
        self.hist_pool: nn.Module | None = None
        if history_pooling is not None and schema.history_len > 0:
            rows = schema.n_items + 1
            self.hist_emb = nn.Embedding(rows, history_dim, padding_idx=0,
                                         sparse=rows >= sparse_min_rows)
            nn.init.normal_(self.hist_emb.weight, std=history_dim**-0.5)
            self.hist_pool = history_pooling(dim=history_dim)
            dims.append(history_dim)
            names.append("behaviour")
        self.social_proj: nn.Linear | None = None
        self.social_pool: nn.Module | None = None
        if social_pooling is not None and schema.social_dim > 0 and schema.social_len > 0:
            self.social_proj = nn.Linear(schema.social_dim, social_dim)
            self.social_pool = social_pooling(dim=social_dim)
            dims.append(social_dim)
            names.append("social_image")
        self.block_names = names
        self.fusion = fusion(in_dims=dims, out_dim=dim)

    def forward(
        self,
        ids: Tensor,
        cat: Tensor,
        num: Tensor,
        hist_items: Tensor,
        hist_age: Tensor,
        social: Tensor,
        social_mask: Tensor,
    ) -> Tensor:
        blocks = [self.ids(ids)]
        if self.cat is not None:
            blocks.append(self.cat(cat))
        if self.use_num:
            blocks.append(num)
        if self.hist_emb is not None and self.hist_pool is not None:
            blocks.append(self.hist_pool(self.hist_emb(hist_items), hist_items > 0, hist_age))
        if self.social_proj is not None and self.social_pool is not None:
            feats = self.social_proj(social)
            blocks.append(self.social_pool(feats, social_mask, torch.zeros_like(social_mask, dtype=feats.dtype)))
        return F.normalize(self.fusion(blocks), dim=-1)


class ItemTower(nn.Module):
    """Item id, categorical / multi-hot / numeric attributes and product-image features."""

    def __init__(
        self,
        schema: FeatureSchema,
        fusion: FusionFactory,
        dim: int,
        id_dim: int,
        id_dropout: float,
        cat_dim: int,
        use_attributes: bool,
        image_dim: int,
        use_image: bool,
        sparse_min_rows: int,
    ) -> None:
        super().__init__()
        self.out_dim = dim
        rows = schema.n_items + 1
        self.ids = IdEmbedding(rows, id_dim, id_dropout, sparse=rows >= sparse_min_rows)
        dims, names = [id_dim], ["id"]
        self.cat: CategoricalEmbedding | None = None
        self.multi: MultiHotEmbedding | None = None
        self.use_num = use_attributes and schema.item_num > 0
        if use_attributes and schema.item_cat_sizes:
            self.cat = CategoricalEmbedding(schema.item_cat_sizes, cat_dim)
            dims.append(self.cat.out_dim)
            names.append("attributes")
        if use_attributes and schema.item_multi_sizes:
            self.multi = MultiHotEmbedding(schema.item_multi_sizes, cat_dim)
            dims.append(self.multi.out_dim)
            names.append("attributes_multi")
        if self.use_num:
            dims.append(schema.item_num)
            names.append("attributes_numeric")
        self.image_proj: nn.Sequential | None = None
        self.image_missing: nn.Parameter | None = None
        if use_image:
            if schema.image_dim < 1:
                raise ValueError("item tower uses images but the dataset provides no image features")
            self.image_proj = nn.Sequential(nn.LayerNorm(schema.image_dim),
                                            nn.Linear(schema.image_dim, image_dim))
            self.image_missing = nn.Parameter(torch.zeros(image_dim))
            dims.append(image_dim)
            names.append("product_image")
        self.block_names = names
        self.fusion = fusion(in_dims=dims, out_dim=dim)

    def forward(
        self,
        ids: Tensor,
        cat: Tensor,
        multi: Tensor,
        num: Tensor,
        image: Tensor,
        image_mask: Tensor,
    ) -> Tensor:
        blocks = [self.ids(ids)]
        if self.cat is not None:
            blocks.append(self.cat(cat))
        if self.multi is not None:
            blocks.append(self.multi(multi))
        if self.use_num:
            blocks.append(num)
        if self.image_proj is not None and self.image_missing is not None:
            img = self.image_proj(image)
            missing = self.image_missing.to(img.dtype).expand_as(img)
            blocks.append(torch.where(image_mask.unsqueeze(-1), img, missing))
        return F.normalize(self.fusion(blocks), dim=-1)
