"""User and item towers: feature blocks, fused (and L2-normalised unless ``normalize`` is false)
into one ``dim``-d vector.

Factories for pooling and fusion arrive as callables (Hydra ``_partial_`` targets): a pooling
factory is called as ``pooling(dim=...)``, a fusion factory as ``fusion(in_dims=..., out_dim=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.embeddings import CategoricalEmbedding, IdEmbedding, MultiHotEmbedding
from recsys.models.image_kernel import ImageKernel, recent_profile
from recsys.models.inputs import FeatureSchema

PoolingFactory = Callable[..., nn.Module]
FusionFactory = Callable[..., nn.Module]


class UserTower(nn.Module):
    """Hashed user id, demographics, purchase history and social-image features.

    ``history_source``: ``shared`` reads the history through the item tower's representation of
    the history items (``hist_vectors`` [B, L, item dim], given by the caller, see
    :meth:`~recsys.models.two_tower.TwoTowerModel.history_items`), so bought items and
    candidates live in one space; ``separate`` (an ablation) learns its own ``history_dim``-d
    table. ``history_encoder`` is a factory ``(dim=, max_len=)`` (``recsys.models.history``).
    ``embedding_dropout`` drops entries of the id / categorical embeddings and history vectors.
    ``history_residual`` (shared history only; SimpleX's aggregation): the pooled history, which
    lives in the candidates' space, is also added to the fused vector with a learned weight, so
    a user's score of an item keeps a direct item-to-item term (``history . candidate``) that the
    fusion MLP cannot wash out.
    ``kernel_dim`` > 0 (the item tower's image kernel, shared history only): the history vectors
    end with each item's image-kernel vector, and the user vector gains ``image_kernel_weight``
    (learned unless ``image_kernel_learn_weight`` is false) x the unit mean of those of the
    ``image_kernel_recent`` latest purchases, so the
    score keeps ``weight * (profile . image)``: ``dim + kernel_dim`` wide.
    ``normalize`` false leaves the fused vector unnormalised (a dot-product model; it must match
    the item tower's).
    """

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
        history_encoder: PoolingFactory | None,
        social_dim: int,
        social_pooling: PoolingFactory | None,
        sparse_min_rows: int,
        history_source: str = "shared",
        item_dim: int = 0,
        embedding_dropout: float = 0.0,
        history_residual: bool = False,
        kernel_dim: int = 0,
        image_kernel_recent: int = 5,
        image_kernel_weight: float = 1.0,
        image_kernel_learn_weight: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        if history_source not in ("shared", "separate"):
            raise ValueError(f"history_source must be shared or separate, got {history_source!r}")
        if history_residual and history_source != "shared":
            raise ValueError("history_residual needs history_source=shared (the pooled history "
                             "must live in the candidates' space)")
        self.kernel_dim = kernel_dim
        self.kernel_recent = image_kernel_recent
        weight: Tensor | None = None
        if kernel_dim > 0:
            if history_source != "shared" or history_encoder is None or schema.history_len < 1:
                raise ValueError("model.net.item_tower.image_kernel_dim > 0 reads the history "
                                 "through the item tower: it needs model.net.user_tower."
                                 "history_source=shared and a history")
            if image_kernel_recent < 1:
                raise ValueError("model.net.user_tower.image_kernel_recent must be >= 1, got "
                                 f"{image_kernel_recent}")
            weight = torch.tensor(float(image_kernel_weight))
        self.kernel_weight: Tensor | None
        if weight is not None and image_kernel_learn_weight:
            self.kernel_weight = nn.Parameter(weight)
        else:  # fixed (a buffer, saved with the model) or none
            self.register_buffer("kernel_weight", weight)
        self.out_dim = dim + kernel_dim
        self.hist_width = 0
        self.ids = IdEmbedding(id_buckets, id_dim, id_dropout, sparse=id_buckets >= sparse_min_rows)
        self.emb_dropout = nn.Dropout(embedding_dropout)
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
        self.shared_history = False
        if history_encoder is not None and schema.history_len > 0:
            self.shared_history = history_source == "shared"
            width = item_dim if self.shared_history else history_dim
            self.hist_width = width
            if width < 1:
                raise ValueError("a shared history needs the item tower's dim (item_dim)")
            if not self.shared_history:
                rows = schema.n_items + 1
                self.hist_emb = nn.Embedding(rows, width, padding_idx=0,
                                             sparse=rows >= sparse_min_rows)
                nn.init.normal_(self.hist_emb.weight, std=width**-0.5)
            self.hist_pool = history_encoder(dim=width, max_len=schema.history_len)
            dims.append(width)
            names.append("behaviour")
        self.residual_weight: nn.Parameter | None = None
        if history_residual and self.shared_history:
            if width != dim:
                raise ValueError(f"history_residual needs the item dim {width} to equal the user "
                                 f"dim {dim}")
            self.residual_weight = nn.Parameter(torch.ones(()))
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
        hist_vectors: Optional[Tensor] = None,  # noqa: UP045 (TorchScript)
    ) -> Tensor:
        blocks = self._profile_blocks(ids, cat, num)
        pooled: Optional[Tensor] = None  # noqa: UP045 (TorchScript)
        kernel: Optional[Tensor] = None  # noqa: UP045 (TorchScript)
        if self.hist_pool is not None:
            pooled = self.hist_pool(self._history(hist_items, hist_vectors), hist_items > 0,
                                    hist_age)
            if self.kernel_dim > 0 and hist_vectors is not None:
                kernel = recent_profile(hist_vectors[..., self.hist_width:], hist_items > 0,
                                        self.kernel_recent)
        return self._fuse(blocks, pooled, self._social_block(social, social_mask), kernel)

    def _profile_blocks(self, ids: Tensor, cat: Tensor, num: Tensor) -> list[Tensor]:
        blocks = [self.emb_dropout(self.ids(ids))]
        if self.cat is not None:
            blocks.append(self.emb_dropout(self.cat(cat)))
        if self.use_num:
            blocks.append(num)
        return blocks

    def _history(self, hist_items: Tensor, hist_vectors: Optional[Tensor]  # noqa: UP045
                 ) -> Tensor:
        if self.hist_emb is not None:
            return self.emb_dropout(self.hist_emb(hist_items))
        if hist_vectors is None:
            raise RuntimeError("a shared history needs hist_vectors")
        return self.emb_dropout(hist_vectors[..., : self.hist_width])

    def _social_block(self, social: Tensor, social_mask: Tensor
                      ) -> Optional[Tensor]:  # noqa: UP045 (TorchScript)
        if self.social_proj is None or self.social_pool is None:
            return None
        feats = self.social_proj(social)
        out: Tensor = self.social_pool(feats, social_mask,
                                       torch.zeros_like(social_mask, dtype=feats.dtype))
        return out

    def _fuse(self, blocks: list[Tensor], pooled: Optional[Tensor],  # noqa: UP045
              social: Optional[Tensor],  # noqa: UP045 (TorchScript)
              kernel: Optional[Tensor] = None) -> Tensor:  # noqa: UP045 (TorchScript)
        if pooled is not None:
            blocks.append(pooled)
        if social is not None:
            blocks.append(social)
        fused = self.fusion(blocks)
        if self.residual_weight is not None and pooled is not None:
            fused = fused + self.residual_weight * pooled
        out = F.normalize(fused, dim=-1) if self.normalize else fused
        if self.kernel_weight is not None and kernel is not None:
            out = torch.cat([out, self.kernel_weight.to(out.dtype) * kernel.to(out.dtype)], -1)
        return out

    @torch.jit.unused
    def sequence(self, ids: Tensor, cat: Tensor, num: Tensor, hist_items: Tensor,
                 hist_age: Tensor, social: Tensor, social_mask: Tensor,
                 hist_vectors: Tensor | None, rows: Tensor, at: Tensor) -> Tensor:
        """User vectors [T, dim] for T targets in one pass of the history encoder over each
        user's sequence: target ``t`` reads user ``rows[t]`` with the history that starts at
        position ``at[t]`` (that position and every older one; -1: an empty history), as
        :meth:`forward` would with that suffix as the whole history. Needs an encoder with
        ``states`` (the causal Transformer)."""
        if self.kernel_dim > 0:
            raise ValueError("one-pass sequence training does not support the image kernel "
                             "(model.net.item_tower.image_kernel_dim > 0)")
        encode = getattr(self.hist_pool, "states", None)
        if encode is None:
            raise ValueError("one-pass sequence training needs the causal Transformer history "
                             "encoder (model/history_encoder=transformer)")
        states = encode(self._history(hist_items, hist_vectors), hist_items > 0, hist_age)
        pooled = states[rows, at.clamp(min=0)] * (at >= 0).unsqueeze(-1).to(states.dtype)
        blocks = [block[rows] for block in self._profile_blocks(ids, cat, num)]
        social_block = self._social_block(social, social_mask)
        return self._fuse(blocks, pooled, None if social_block is None else social_block[rows])


class UserTowerWithTable(nn.Module):
    """A shared-history user tower with the history representation of every item frozen into
    a table (row 0: padding), so that it takes the plain user inputs (export, serving)."""

    def __init__(self, tower: UserTower, item_vectors: Tensor) -> None:
        super().__init__()
        self.tower = tower
        self.out_dim = tower.out_dim
        pad = torch.zeros(1, item_vectors.shape[1], dtype=item_vectors.dtype)
        self.table: Tensor
        self.register_buffer("table", torch.cat([pad, item_vectors.detach().cpu()]))

    def forward(self, ids: Tensor, cat: Tensor, num: Tensor, hist_items: Tensor,
                hist_age: Tensor, social: Tensor, social_mask: Tensor) -> Tensor:
        out: Tensor = self.tower(ids, cat, num, hist_items, hist_age, social, social_mask,
                                 self.table[hist_items])
        return out


class ItemTower(nn.Module):
    """Item id, categorical / multi-hot / numeric attributes and product-image features.

    ``image_kernel_dim`` > 0 appends the fixed image-similarity channel
    (:class:`~recsys.models.image_kernel.ImageKernel`) to the unit learned vector: the output is
    ``learned_dim + image_kernel_dim`` wide, of norm sqrt(2). ``normalize`` false leaves the
    learned vector unnormalised: the score is then a plain dot product, whose scale can carry
    item popularity (for ``model/loss=full_mse``).

    :meth:`represent` is the same tower reading only some of its blocks (the others zeroed), the
    representation a shared user history may read (``history_encoder.item_features``).
    """

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
        embedding_dropout: float = 0.0,
        image_kernel_dim: int = 0,
        image_kernel_seed: int = 0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        self.learned_dim = dim
        self.kernel: ImageKernel | None = None
        if image_kernel_dim < 0:
            raise ValueError("model.net.item_tower.image_kernel_dim must be >= 0 (0: off), "
                             f"got {image_kernel_dim}")
        if image_kernel_dim > 0:
            if schema.image_dim < 1:
                raise ValueError("model.net.item_tower.image_kernel_dim > 0 needs image features "
                                 "(datamodule.image_features_dir), but the dataset provides none")
            self.kernel = ImageKernel(schema.image_dim, image_kernel_dim, image_kernel_seed)
        self.kernel_dim = image_kernel_dim if self.kernel is not None else 0
        self.out_dim = dim + self.kernel_dim
        rows = schema.n_items + 1
        self.ids = IdEmbedding(rows, id_dim, id_dropout, sparse=rows >= sparse_min_rows)
        self.emb_dropout = nn.Dropout(embedding_dropout)
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

    def blocks(self, ids: Tensor, cat: Tensor, multi: Tensor, num: Tensor, image: Tensor,
               image_mask: Tensor) -> list[Tensor]:
        """The feature blocks, in the order of ``block_names``."""
        blocks = [self.emb_dropout(self.ids(ids))]
        if self.cat is not None:
            blocks.append(self.emb_dropout(self.cat(cat)))
        if self.multi is not None:
            blocks.append(self.emb_dropout(self.multi(multi)))
        if self.use_num:
            blocks.append(num)
        if self.image_proj is not None and self.image_missing is not None:
            img = self.image_proj(image)
            missing = self.image_missing.to(img.dtype).expand_as(img)
            blocks.append(torch.where(image_mask.unsqueeze(-1), img, missing))
        return blocks

    def forward(
        self,
        ids: Tensor,
        cat: Tensor,
        multi: Tensor,
        num: Tensor,
        image: Tensor,
        image_mask: Tensor,
    ) -> Tensor:
        blocks = self.blocks(ids, cat, multi, num, image, image_mask)
        return self._with_kernel(self._learned(blocks), image, image_mask)

    def _learned(self, blocks: list[Tensor]) -> Tensor:
        """The fused blocks, L2-normalised unless ``normalize`` is false."""
        fused: Tensor = self.fusion(blocks)
        return F.normalize(fused, dim=-1) if self.normalize else fused

    def _with_kernel(self, learned: Tensor, image: Tensor, image_mask: Tensor) -> Tensor:
        """``learned`` followed by the image kernel's unit vector (when the tower has one)."""
        if self.kernel is None:
            return learned
        return torch.cat([learned, self.kernel(image, image_mask).to(learned.dtype)], dim=-1)

    def represent(self, inputs: tuple[Tensor, ...], features: list[str] | None) -> Tensor:
        """Tower output from the named blocks only (None: all, i.e. ``forward``); the image
        kernel's vector, when the tower has one, always follows."""
        blocks = self.blocks(*inputs)
        if features is not None:
            blocks = [b if name in features else torch.zeros_like(b)
                      for name, b in zip(self.block_names, blocks, strict=True)]
        return self._with_kernel(self._learned(blocks), inputs[4], inputs[5])
