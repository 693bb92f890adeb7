"""Tower inputs: the feature layout a dataset provides (:class:`FeatureSchema`) and the tensors
one batch of users or items carries (:class:`UserInputs`, :class:`ItemInputs`).

Every input is a tensor so that the towers stay TorchScript-able; a missing feature group is an
empty tensor (for example ``cat`` of shape ``[B, 0]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from torch import Tensor


@dataclass(frozen=True)
class FeatureSchema:
    """Sizes of every feature a tower may read; part of a checkpoint's compatibility signature."""

    n_users: int
    n_items: int
    user_cat_sizes: list[int] = field(default_factory=list)
    user_num: int = 0
    item_cat_sizes: list[int] = field(default_factory=list)
    item_multi_sizes: list[int] = field(default_factory=list)
    item_multi_len: int = 0
    item_num: int = 0
    image_dim: int = 0
    social_dim: int = 0
    history_len: int = 0
    social_len: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        return cls(**data)


class UserInputs(NamedTuple):
    """One batch of user features.

    ids: [B] id bucket (0 = cold user); cat: [B, Fc] category indices (0 = missing); num: [B, Fn]
    standardised numbers; hist_items: [B, L] item index + 1 of past purchases (0 = padding);
    hist_age: [B, L] log1p(days since the purchase); social: [B, M, D] social-image features;
    social_mask: [B, M] bool, False where there is no (consented) image.
    """

    ids: Tensor
    cat: Tensor
    num: Tensor
    hist_items: Tensor
    hist_age: Tensor
    social: Tensor
    social_mask: Tensor


class ItemInputs(NamedTuple):
    """One batch of item features.

    ids: [B] id bucket (0 = cold item); cat: [B, Fc]; multi: [B, Fm, L] multi-hot indices (0 =
    padding or unknown); num: [B, Fn]; image: [B, D] product-image features; image_mask: [B] bool.
    """

    ids: Tensor
    cat: Tensor
    multi: Tensor
    num: Tensor
    image: Tensor
    image_mask: Tensor
