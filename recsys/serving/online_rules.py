"""Marketing rules at request time: the campaign's rule engine on one user's candidates.

A known user's candidates go through :func:`recsys.rules.apply_rules` with the context
``recsys-campaign`` builds (dataset + mining outputs, built once per bundle), so each decision
equals the offline plan's wherever the campaign-wide budgets (promotion budget, channel budgets)
did not bind: a single request cannot see the rest of a campaign. A new user is ruled in a one-user
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
from recsys.serving.user_rules import Decision, UserRules


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
    """The rules and their context, loaded once; :meth:`decide` runs per request.

    :meth:`decide` is the numpy one-user path (:mod:`recsys.serving.user_rules`); :meth:`apply`
    runs the rules engine itself, its reference. In :meth:`apply`, each request is ruled in a
    context cut down to its user and to the items it touches (its candidates and its history),
    renumbered from 0: every rule reads a user's row, an item's row or the user's own history,
    so the decisions are those of the full context at a cost that does not grow with the
    catalogue or the customer base."""

    def __init__(self, rules: RulesConfig, context: RuleContext,
                 data_fingerprint: str | None = None) -> None:
        self.rules = rules
        self.context = context
        self.data_fingerprint = data_fingerprint  # of the dataset the context was built from
        self._template = _template_row(context.users)
        self._history = _by_user(context.history)
        self._contacts = _by_user(context.contacts) if context.contacts is not None else None
        self._item_row = {str(v): i for i, v in enumerate(context.items["item_id"].astype(str))}
        self._association = _AssociationIndex(context.association)
        self.compiled = UserRules(rules, context)

    @classmethod
    def load(cls, rules: RulesConfig, settings: ContextSettings) -> OnlineRules:
        loaded = build_context(settings.dataset_dir, settings.mining_dir,
                               history_splits=settings.history_splits,
                               purchase_events=settings.purchase_events, aliases=settings.aliases,
                               demand_window_days=settings.demand_window_days, now=settings.now)
        return cls(rules, loaded.context, loaded.dataset.manifest.get("data_fingerprint"))

    def apply(self, candidates: pd.DataFrame, new_user: Mapping[str, Any] | None = None
              ) -> pd.DataFrame:
        """The plan rows of one user's candidates (known users: ``user_idx`` >= 0; a new
        user: ``new_user`` holds its attributes and ``history`` item ids)."""
        if new_user is None:
            user = int(candidates["user_idx"].iloc[0]) if len(candidates) else 0
            users = self.context.users.iloc[[user]].reset_index(drop=True)
            history = self._history.rows(user)
            contacts = self._contacts.rows(user) if self._contacts is not None else None
        else:
            user = -1
            users = self._new_user_row(new_user)
            history = self._new_user_history(new_user)
            contacts = None
        touched = np.unique(np.r_[candidates["item_idx"].to_numpy(np.int64),
                                  history["item_idx"].to_numpy(np.int64)])
        items = self.context.items.iloc[touched].reset_index(drop=True)
        items["item_idx"] = np.arange(len(items), dtype=np.int64)
        users["user_idx"] = np.zeros(1, dtype=np.int64)
        owned = self.context.items.iloc[np.unique(history["item_idx"].to_numpy(np.int64))]
        ctx = replace(self.context, users=users, items=items,
                      history=_local(history, touched),
                      association=self._association.applicable(owned),
                      contacts=None if contacts is None else contacts.assign(user_idx=0))
        rows = _local(candidates, touched)
        plan = apply_rules(rows, ctx, self.rules).recommendations
        return plan.assign(user_idx=np.full(len(plan), user, dtype=np.int64),
                           item_idx=touched[plan["item_idx"].to_numpy(np.int64)])

    def decide(self, candidates: Mapping[str, np.ndarray],
               new_user: Mapping[str, Any] | None = None) -> Decision:
        """:meth:`apply`'s decisions for one user's candidates (the columns of
        :data:`~recsys.serving.user_rules.CANDIDATE_COLUMNS` as arrays), as arrays."""
        if new_user is None:
            users = candidates["user_idx"]
            return self.compiled.decide(candidates, int(users[0]) if len(users) else 0)
        bought = self._new_user_history(new_user)["item_idx"].to_numpy(np.int64)
        return self.compiled.decide(candidates, -1, self._new_user_row(new_user), bought)

    def _new_user_row(self, record: Mapping[str, Any]) -> pd.DataFrame:
        users = self._template.copy()
        for name, value in record.items():
            if name in users.columns and name not in ("user_idx", "user_id", "history"):
                users[name] = pd.Series([value], dtype=object).astype(users[name].dtype,
                                                                      errors="ignore")
        users["user_id"] = str(record.get("user_id") or "new")
        return users

    def _new_user_history(self, record: Mapping[str, Any]) -> pd.DataFrame:
        """The request's history as purchases at the context's ``now``."""
        bought = []
        for entry in record.get("history") or []:
            item = str(entry[0] if isinstance(entry, list | tuple) else entry)
            if item not in self._item_row:
                raise DataError(f"history names unknown item id {item!r}", column="history")
            bought.append(self._item_row[item])
        return pd.DataFrame({"user_idx": np.zeros(len(bought), dtype=np.int64),
                             "item_idx": np.asarray(bought, dtype=np.int64),
                             "timestamp": pd.DatetimeIndex([self.context.now] * len(bought),
                                                           dtype=pd.Series([self.context.now]).dtype),
                             "quantity": np.ones(len(bought))})


class _AssociationIndex:
    """The association rules by antecedent, to keep per request only those a user's purchases
    can fire (all antecedents owned): the others change no decision."""

    def __init__(self, rules: pd.DataFrame) -> None:
        self.rules = rules
        self.needs = [frozenset(str(a) for a in ante) for ante in rules["antecedents"]]
        self.by_label: dict[tuple[str, str], list[int]] = {}
        for i, (level, needs) in enumerate(zip(rules["level"].astype(str), self.needs,
                                               strict=True)):
            for label in needs:
                self.by_label.setdefault((level, label), []).append(i)
        self.levels = rules["level"].astype(str).to_numpy()

    def applicable(self, owned: pd.DataFrame) -> pd.DataFrame:
        """Rules whose antecedents are all among ``owned`` items (item level) or their
        categories (category level)."""
        labels = {"item": {str(v) for v in owned["item_id"]},
                  "category": {str(v) for v in owned["category"]}
                  if "category" in owned.columns else set()}
        hits = {i for level, have in labels.items() for label in have
                for i in self.by_label.get((level, label), ())}
        keep = sorted(i for i in hits if self.needs[i] <= labels.get(self.levels[i], set()))
        return self.rules.iloc[keep].reset_index(drop=True)


@dataclass(frozen=True)
class _ByUser:
    """A table sorted by user_idx with the row range of each user."""

    frame: pd.DataFrame
    starts: np.ndarray

    def rows(self, user: int) -> pd.DataFrame:
        lo, hi = np.searchsorted(self.starts, [user, user + 1])
        return self.frame.iloc[lo:hi].reset_index(drop=True)


def _by_user(frame: pd.DataFrame) -> _ByUser:
    ordered = frame.sort_values("user_idx", kind="stable").reset_index(drop=True)
    return _ByUser(ordered, ordered["user_idx"].to_numpy(np.int64))


def _local(frame: pd.DataFrame, touched: np.ndarray) -> pd.DataFrame:
    """``frame`` with item_idx renumbered into ``touched`` and user_idx 0."""
    return frame.assign(user_idx=np.zeros(len(frame), dtype=np.int64),
                        item_idx=np.searchsorted(touched, frame["item_idx"].to_numpy(np.int64)))


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
