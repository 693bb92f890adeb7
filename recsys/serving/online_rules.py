"""Marketing rules at request time: the campaign's rule engine on one user's candidates.

A known user's candidates go through :func:`recsys.rules.apply_rules` with the same context as
``recsys-campaign`` (dataset + mining outputs, built once per bundle), so each decision equals
the offline plan's wherever the campaign-wide budgets (promotion budget, channel budgets) did not
bind: a single request cannot see the rest of a campaign. A new user is ruled in a one-user
context: a row of the user table with the request's attributes over the typed defaults, and the
history given in the request as purchases made at the context's ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.rules import RuleContext, RulesConfig, apply_rules, build_context


@dataclass(frozen=True)
class ContextSettings:
    """Where the rule context comes from (the keys of ``recsys-campaign``'s ``context``)."""

    dataset_dir: Path
    mining_dir: Path
    history_splits: Sequence[str]
    purchase_events: Sequence[str]
    aliases: Mapping[str, Sequence[str]]
    demand_window_days: float
    now: pd.Timestamp | None = None


class OnlineRules:
    """The rules and their context, loaded once; :meth:`apply` runs per request."""

    def __init__(self, rules: RulesConfig, context: RuleContext) -> None:
        self.rules = rules
        self.context = context
        self._template = _template_row(context.users)

    @classmethod
    def load(cls, rules: RulesConfig, settings: ContextSettings) -> OnlineRules:
        ctx = build_context(settings.dataset_dir, settings.mining_dir,
                            history_splits=settings.history_splits,
                            purchase_events=settings.purchase_events, aliases=settings.aliases,
                            demand_window_days=settings.demand_window_days,
                            now=settings.now).context
        return cls(rules, ctx)

    def apply(self, candidates: pd.DataFrame, new_user: Mapping[str, Any] | None = None
              ) -> pd.DataFrame:
        """The plan rows of one user's candidates (known users: ``user_idx`` >= 0; a new
        user: ``new_user`` holds its attributes and ``history`` item ids)."""
        if new_user is None:
            return apply_rules(candidates, self.context, self.rules).recommendations
        ctx = self._new_user_context(new_user)
        rows = candidates.assign(user_idx=np.zeros(len(candidates), dtype=np.int64))
        plan = apply_rules(rows, ctx, self.rules).recommendations
        return plan.assign(user_idx=np.full(len(plan), -1, dtype=np.int64))

    def _new_user_context(self, record: Mapping[str, Any]) -> RuleContext:
        users = self._template.copy()
        for name, value in record.items():
            if name in users.columns and name not in ("user_idx", "user_id", "history"):
                users[name] = pd.Series([value], dtype=object).astype(users[name].dtype,
                                                                      errors="ignore")
        users["user_id"] = str(record.get("user_id") or "new")
        item_row = {str(v): i for i, v in enumerate(self.context.items["item_id"].astype(str))}
        bought = []
        for entry in record.get("history") or []:
            item = str(entry[0] if isinstance(entry, list | tuple) else entry)
            if item not in item_row:
                raise DataError(f"history names unknown item id {item!r}", column="history")
            bought.append(item_row[item])
        history = pd.DataFrame({"user_idx": np.zeros(len(bought), dtype=np.int64),
                                "item_idx": np.asarray(bought, dtype=np.int64),
                                "timestamp": [self.context.now] * len(bought),
                                "quantity": np.ones(len(bought))})
        return replace(self.context, users=users, history=history, contacts=None)


def _template_row(users: pd.DataFrame) -> pd.DataFrame:
    """One user row with the table's dtypes and empty values (consents False)."""
    row = users.iloc[:1].copy().reset_index(drop=True)
    for col in row.columns:
        dtype = row[col].dtype
        if pd.api.types.is_bool_dtype(dtype):
            row[col] = False
        elif pd.api.types.is_float_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
            row[col] = pd.Series([None], dtype=dtype)
        elif pd.api.types.is_integer_dtype(dtype):
            row[col] = pd.Series([np.nan], dtype="float64")
        else:
            row[col] = pd.Series([None], dtype=object)
    row["user_idx"] = np.zeros(1, dtype=np.int64)
    return row
