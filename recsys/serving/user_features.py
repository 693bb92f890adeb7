"""Encode a new user's raw features into the user tower's inputs.

The tower reads ``(ids, cat, num, hist_items, hist_age, social, social_mask)``
(:class:`recsys.models.inputs.UserInputs`). A user given by features has id bucket 0 (cold),
categorical indices from the dataset's vocabularies, standardised numbers, an optional purchase
history and no social images. The standardisation of each numeric feature is recovered from the
processed users table by a least-squares fit of ``<col>_z`` on the raw column (or its ``log1p``);
derived numeric features without a raw column (e.g. PCA components) are fitted on the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch

from recsys.errors import DataError

UserTensors = tuple[torch.Tensor, ...]


@dataclass
class NumericRule:
    """``z = sum(weights * inputs) + shift``; inputs are raw values (``log1p``'d when asked) of
    ``sources``, or the z-values of other features when ``derived``. A missing raw value takes
    ``fill`` (the dataset's imputed value, from its ``<col>_missing`` flag) or gives z = 0."""

    sources: list[str]
    weights: list[float]
    shift: float
    log1p: bool
    derived: bool
    fill: float | None


@dataclass
class UserFeatureEncoder:
    """Vocabularies and numeric rules for ``features.users`` plus the tower's input shapes.

    The value lookups (:attr:`item_index`, :attr:`category_index`) are built on first use and
    kept, so the fields are not to be changed after that."""

    categorical: dict[str, list[str]]
    numeric: dict[str, NumericRule]
    history_len: int = 0
    social_len: int = 0
    social_dim: int = 0
    item_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("item_ids")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], item_ids: Sequence[str]) -> UserFeatureEncoder:
        numeric = {k: NumericRule(**v) for k, v in data["numeric"].items()}
        return cls(dict(data["categorical"]), numeric, int(data["history_len"]),
                   int(data["social_len"]), int(data["social_dim"]), list(item_ids))

    @property
    def known(self) -> list[str]:
        """Feature names accepted by :meth:`encode` (besides ``history``)."""
        raw = [s for r in self.numeric.values() if not r.derived for s in r.sources]
        return sorted({*self.categorical, *raw})

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
        z: dict[str, np.ndarray] = {}
        for name, rule in self.numeric.items():
            if rule.derived:
                continue
            raw = np.array([_float(r.get(rule.sources[0]), name) for r in records], np.float64)
            if rule.fill is not None:
                raw = np.where(np.isnan(raw), rule.fill, raw)
            if rule.log1p:
                raw = np.log1p(np.clip(raw, 0, None))
            z[name] = np.nan_to_num(raw * rule.weights[0] + rule.shift)
        for name, rule in self.numeric.items():
            if rule.derived:
                x = np.stack([z[s] for s in rule.sources], axis=1) if rule.sources else None
                base = x @ np.asarray(rule.weights) if x is not None else 0.0
                z[name] = np.zeros(len(records)) + base + rule.shift
        cols = [z[n] for n in self.numeric]
        return (np.stack(cols, axis=1) if cols else np.zeros((len(records), 0))).astype(
            np.float32)

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


def _float(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"numeric user feature has value {value!r}", column=name) from None


def _imputed(users: pd.DataFrame, col: str) -> float | None:
    """The raw value the dataset put in rows flagged ``<col>_missing`` (None if not flagged)."""
    flag = f"{col}_missing"
    if flag not in users.columns:
        return None
    values = pd.to_numeric(users.loc[users[flag].astype(bool), col], errors="coerce").dropna()
    return float(values.median()) if len(values) else None


def _fit_affine(x: np.ndarray, z: np.ndarray) -> tuple[float, float, float]:
    ok = np.isfinite(x)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return 0.0, float(z[ok].mean()) if ok.any() else 0.0, 0.0
    a, b = np.polyfit(x[ok], z[ok], 1)
    resid = float(np.abs(a * x[ok] + b - z[ok]).max())
    return float(a), float(b), resid


def fit_encoder(
    users: pd.DataFrame,
    vocabs: Mapping[str, list[str]],
    features: Mapping[str, Any],
    item_ids: Sequence[str],
    shapes: Mapping[str, int],
) -> UserFeatureEncoder:
    """Encoder for ``features["users"]`` of a processed dataset (see the module doc)."""
    spec = features.get("users", {})
    categorical = {c: list(vocabs.get(f"users.{c}", vocabs.get(c, []))) for c in
                   spec.get("categorical", [])}
    numeric: dict[str, NumericRule] = {}
    derived = []
    for col in spec.get("numeric", []):
        if f"{col}_z" not in users.columns:
            raise DataError("features.json names a column the users table lacks",
                            column=f"{col}_z")
        if col not in users.columns:
            derived.append(col)
            continue
        z = users[f"{col}_z"].to_numpy(np.float64)
        raw = pd.to_numeric(users[col], errors="coerce").to_numpy(np.float64)
        lin = _fit_affine(raw, z)
        log = _fit_affine(np.log1p(np.clip(raw, 0, None)), z)
        use_log = log[2] < lin[2]
        a, b, _ = log if use_log else lin
        numeric[col] = NumericRule([col], [a], b, log1p=use_log, derived=False,
                                   fill=_imputed(users, col))
    base = list(numeric)
    for col in derived:
        x = np.column_stack([users[f"{s}_z"].to_numpy(np.float64) for s in base] +
                            [np.ones(len(users))])
        coef = np.linalg.lstsq(x, users[f"{col}_z"].to_numpy(np.float64), rcond=None)[0]
        numeric[col] = NumericRule(base, coef[:-1].tolist(), float(coef[-1]), log1p=False,
                                   derived=True, fill=None)
    ordered = {c: numeric[c] for c in spec.get("numeric", [])}
    return UserFeatureEncoder(categorical, ordered, int(shapes.get("history_len", 0)),
                              int(shapes.get("social_len", 0)), int(shapes.get("social_dim", 0)),
                              list(item_ids))
