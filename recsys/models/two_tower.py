"""The two-tower retrieval model: a user tower, an item tower and a (learnable) temperature."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from recsys.errors import ModelError
from recsys.models.inputs import FeatureSchema, ItemInputs, UserInputs
from recsys.models.towers import ItemTower, UserTower, UserTowerWithTable


class TwoTowerModel(nn.Module):
    """Scores ``user . item / temperature`` between the tower outputs: L2-normalised (cosine),
    or plain vectors (dot product) when the towers' ``normalize`` is false.

    ``user_tower`` / ``item_tower`` are factories called with ``schema=`` (Hydra ``_partial_``).
    ``image_encoder`` (optional) is a CNN fine-tuned end to end: the item tower then receives its
    features computed from pixels instead of cached features.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        user_tower: Callable[..., UserTower],
        item_tower: Callable[..., ItemTower],
        temperature: float,
        learn_temperature: bool,
        min_temperature: float = 0.01,
        image_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.schema = schema
        if image_encoder is not None:
            enc_dim = int(getattr(image_encoder, "out_dim", -1))
            if schema.image_dim and enc_dim != schema.image_dim:
                raise ModelError(
                    f"image encoder outputs {enc_dim}-d features but the item tower expects "
                    f"{schema.image_dim}-d (cached image features)",
                    column="image_dim",
                )
        try:
            self.item_tower = item_tower(schema=schema)
            kernel = {"kernel_dim": self.item_tower.kernel_dim} if self.item_tower.kernel_dim else {}
            self.user_tower = user_tower(schema=schema, item_dim=self.item_tower.learned_dim,
                                         **kernel)
        except ValueError as err:
            raise ModelError(f"cannot build the towers: {err}") from None
        self.history_features: list[str] | None = getattr(
            self.user_tower.hist_pool, "item_features", None)
        missing = sorted(set(self.history_features or []) - set(self.item_tower.block_names))
        if missing:
            raise ModelError(
                f"model.history_encoder.item_features names {missing[0]!r}, which the item tower "
                f"does not have (it has {self.item_tower.block_names})", column="item_features")
        if self.user_tower.normalize != self.item_tower.normalize:
            raise ModelError(
                "model.net.user_tower.normalize and model.net.item_tower.normalize must agree "
                "(both towers cosine, or both dot product)", column="normalize")
        if self.user_tower.out_dim != self.item_tower.out_dim:
            raise ModelError(
                f"incompatible dimensions: user tower outputs {self.user_tower.out_dim}-d vectors, "
                f"item tower {self.item_tower.out_dim}-d; set model.net.user_tower.dim and "
                f"model.net.item_tower.dim to the same value",
                column="dim",
            )
        if not 0 < min_temperature <= temperature:
            raise ModelError(
                f"model.net.temperature {temperature} must be >= model.net.min_temperature "
                f"{min_temperature} > 0", column="temperature",
            )
        if image_encoder is not None and self.item_tower.image_proj is None:
            raise ModelError("an image encoder is given but the item tower does not use images",
                             column="use_image")
        self.image_encoder = image_encoder
        self.dim = self.user_tower.out_dim
        self.min_log_inv = -math.log(1.0)  # temperature never exceeds 1
        self.max_log_inv = -math.log(min_temperature)
        log_inv = torch.tensor(-math.log(temperature))
        if learn_temperature:
            self.log_inv_temperature = nn.Parameter(log_inv)
        else:
            self.register_buffer("log_inv_temperature", log_inv)

    @property
    def temperature(self) -> Tensor:
        """Current temperature, clamped to [min_temperature, 1]."""
        return torch.exp(-self.log_inv_temperature.clamp(self.min_log_inv, self.max_log_inv))

    @property
    def normalize(self) -> bool:
        """Whether both towers output L2-normalised vectors (they are checked to agree)."""
        return bool(self.item_tower.normalize)

    @property
    def similarity(self) -> str:
        """``cosine`` for normalised towers, else ``dot``: what an index of its vectors ranks by."""
        return "cosine" if self.normalize else "dot"

    @property
    def shared_history(self) -> bool:
        """Whether the user tower reads history through :meth:`history_items`."""
        return bool(self.user_tower.shared_history)

    def history_items(self, inputs: ItemInputs) -> Tensor:
        """The representation a shared user history reads for these items: the item tower's
        output from ``history_features`` (all blocks by default), i.e. the candidates' space."""
        return self.item_tower.represent(tuple(inputs), self.history_features)

    def user(self, inputs: UserInputs, hist_vectors: Tensor | None = None) -> Tensor:
        """User vectors [B, dim] (L2-normalised unless ``normalize`` is false);
        ``hist_vectors`` [B, L, item dim]: the :meth:`history_items` of ``inputs.hist_items``
        (needed by a shared history)."""
        out: Tensor = self.user_tower(*inputs, hist_vectors)
        return out

    def user_sequence(self, inputs: UserInputs, hist_vectors: Tensor | None, rows: Tensor,
                      at: Tensor) -> Tensor:
        """User vectors [T, dim] of T targets from one pass over each user's history (see
        :meth:`~recsys.models.towers.UserTower.sequence`)."""
        out: Tensor = self.user_tower.sequence(*inputs, hist_vectors, rows, at)
        return out

    def user_tower_with_table(self, history_table: Tensor) -> nn.Module:
        """The user tower taking plain :class:`UserInputs` (export): a shared history reads the
        frozen ``history_table`` [n_items, item dim] of :meth:`history_items` of every item."""
        if not self.shared_history:
            return self.user_tower
        return UserTowerWithTable(self.user_tower, history_table)

    def item(self, inputs: ItemInputs, pixels: Tensor | None = None) -> Tensor:
        """Item vectors [B, dim] (L2-normalised unless ``normalize`` is false); ``pixels`` feed
        the fine-tuned image encoder."""
        if pixels is not None:
            if self.image_encoder is None:
                raise ModelError("pixels given but the model has no image encoder")
            inputs = inputs._replace(image=self.image_encoder(pixels).to(inputs.num.dtype))
        out: Tensor = self.item_tower(*inputs)
        return out

    def forward(self, users: UserInputs, items: ItemInputs,
                hist_vectors: Tensor | None = None) -> Tensor:
        """Scores [B] of matching user/item rows (``hist_vectors``: see :meth:`user`)."""
        return (self.user(users, hist_vectors) * self.item(items)).sum(-1) / self.temperature
