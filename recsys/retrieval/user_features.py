"""Encode a new user's raw features into the user tower's inputs.

The tower reads ``(ids, cat, num, hist_items, hist_age, social, social_mask)``
(:class:`recsys.models.inputs.UserInputs`). A user given by features has id bucket 0 (cold),
categorical indices from the dataset's vocabularies, numeric features through the statistics the
data stage fitted on the training split and saved with the dataset (outlier clipping, missing-value
fill, scaling, PCA: :class:`recsys.data.fitted.NumericParams`, the very code that encoded the
dataset), an optional purchase history and no social images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from recsys.data.fitted import FittedParams, NumericParams
from recsys.data.fitted_io import numeric_from_dict, numeric_to_dict
from recsys.errors import DataError

UserTensors = tuple[torch.Tensor, ...]


@dataclass
class UserFeatureEncoder:
    """Vocabularies and fitted numeric parameters for ``features.users`` plus the tower's input
    shapes.

    The value lookups (:attr:`item_index`, :attr:`category_index`) are built on first use and
    kept, so the fields are not to be changed after that."""

    categorical: dict[str, list[str]]
    numeric: NumericParams
    history_len: int = 0
    social_len: int = 0
    social_dim: int = 0
    item_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"categorical": self.categorical, "numeric": numeric_to_dict(self.numeric),
                "history_len": self.history_len, "social_len": self.social_len,
                "social_dim": self.social_dim}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], item_ids: Sequence[str]) -> UserFeatureEncoder:
        numeric = numeric_from_dict(data["numeric"], {})
        return cls(dict(data["categorical"]), numeric, int(data["history_len"]),
                   int(data["social_len"]), int(data["social_dim"]), list(item_ids))

    @property
    def known(self) -> list[str]:
        """Feature names accepted by :meth:`encode` (besides ``history``)."""
        return sorted({*self.categorical, *self.numeric.columns})

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Position of each item id in ``item_ids``."""
        return {v: i for i, v in enumerate(self.item_ids)}

    @cached_property
    def category_index(self) -> dict[str, dict[str, int]]:
        """Per categorical feature, the index of each vocabulary value."""
        return {name: {v: i for i, v in enumerate(vocab)}
                for name, vocab in self.categorical.items()}

    def encode(self, records: Sequence[Mapping[str, Any]]) -> UserTensors:
        """Tower inputs for users described by ``records`` (``{"age": 31, "gender": "f",
        "history": [item_id, ...] or [(item_id, days_ago), ...]}``)."""
        accepted = {*self.known, "history", "user_id"}
        for rec in records:
            unknown = set(rec) - accepted
            if unknown:
                raise DataError(f"unknown user features {sorted(unknown)}; known: {self.known}",
                                column=sorted(unknown)[0])
        b = len(records)
        cat = torch.zeros((b, len(self.categorical)), dtype=torch.int64)
        for j, (name, lookup) in enumerate(self.category_index.items()):
            for i, rec in enumerate(records):
                value = rec.get(name)
                cat[i, j] = lookup.get(str(value), 0) if value is not None else 0
        num = torch.from_numpy(self._numeric(records))
        hist, age = self._history(records)
        social = torch.zeros((b, self.social_len, self.social_dim), dtype=torch.float32)
        mask = torch.zeros((b, self.social_len), dtype=torch.bool)
        return torch.zeros(b, dtype=torch.int64), cat, num, hist, age, social, mask

    def _numeric(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        raw = {c: np.array([_float(r.get(c), c) for r in records], np.float64)
               for c in self.numeric.columns}
        return numeric_z(self.numeric, raw, len(records))

    def _history(self, records: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        lookup = self.item_index
        hist = torch.zeros((len(records), self.history_len), dtype=torch.int64)
        age = torch.zeros((len(records), self.history_len), dtype=torch.float32)
        for i, rec in enumerate(records):
            entries = list(rec.get("history") or [])[: self.history_len]
            for j, entry in enumerate(entries):
                item, days = entry if isinstance(entry, tuple | list) else (entry, 0.0)
                if str(item) not in lookup:
                    raise DataError(f"history names unknown item id {item!r}", column="history")
                hist[i, j] = lookup[str(item)] + 1
                age[i, j] = math.log1p(max(float(days), 0.0))
        return hist, age

    def history_items(self, record: Mapping[str, Any]) -> list[int]:
        """Item indices of a record's ``history`` (to exclude from its recommendations)."""
        lookup = self.item_index
        out = []
        for entry in record.get("history") or []:
            item = entry[0] if isinstance(entry, tuple | list) else entry
            if str(item) not in lookup:
                raise DataError(f"history names unknown item id {item!r}", column="history")
            out.append(lookup[str(item)])
        return out


def numeric_z(params: NumericParams, raw: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """``params.z_matrix`` of float64 columns ``raw`` without pandas (a request's few rows: the
    frame plumbing cost more than the arithmetic): clip to the fences (``clip`` action), fill gaps
    with the training medians, then the fitted scalers' and PCA's own ``z`` / ``transform``."""
    columns: dict[str, np.ndarray] = {}
    for col in params.columns:
        v = np.asarray(raw.get(col, np.full(n, np.nan)), dtype=np.float64)
        fence = params.fences.get(col)
        if params.outlier_action == "clip" and fence is not None:
            v = np.clip(v, fence.lo, fence.hi)
        if col in params.fill:
            v = np.where(np.isnan(v), params.fill[col], v)
        columns[col] = v
    z = {col: params.scalers[col].z(v) for col, v in columns.items()}
    if params.pca is not None:
        comps = params.pca.transform(np.stack([z[c] for c in params.pca.inputs], axis=1)
                                     .astype(np.float64) if params.pca.inputs
                                     else np.zeros((n, 0)))
        for i, name in enumerate(params.pca.names):
            z[name] = params.scalers[name].z(comps[:, i])
    if not params.names:
        return np.zeros((n, 0), dtype=np.float32)
    return np.stack([z[name].astype(np.float32) for name in params.names], axis=1)


def _float(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"numeric user feature has value {value!r}", column=name) from None


def user_encoder(
    fitted: FittedParams,
    features: Mapping[str, Any],
    item_ids: Sequence[str],
    shapes: Mapping[str, int],
) -> UserFeatureEncoder:
    """Encoder for ``features["users"]`` of a processed dataset from its fitted statistics."""
    params = fitted.tables["users"]
    spec = features.get("users", {})
    numeric = list(spec.get("numeric", []))
    if numeric != params.numeric.names:
        raise DataError(f"features.json lists user numeric features {numeric}, fitted.json "
                        f"{params.numeric.names}; rerun recsys-data", column="users.numeric")
    missing = [c for c in spec.get("categorical", []) if c not in params.categorical]
    if missing:
        raise DataError("features.json names a user feature without a vocabulary",
                        column=f"users.{missing[0]}")
    categorical = {c: list(params.categorical[c]) for c in spec.get("categorical", [])}
    return UserFeatureEncoder(categorical, params.numeric, int(shapes.get("history_len", 0)),
                              int(shapes.get("social_len", 0)), int(shapes.get("social_dim", 0)),
                              list(item_ids))
