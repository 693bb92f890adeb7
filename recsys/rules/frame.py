"""Vectorised evaluation of conditions over candidate rows and the user / item tables.

A condition whose columns all live in the user (or item) table is evaluated once per user (item)
and gathered onto the rows by index, so a 1M-row frame costs one integer gather per such node.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.rules.conditions import All, Condition, Leaf, Not, columns_of
from recsys.rules.context import RuleContext

SCOPES = ("row", "user", "item")


def column_kind(series: pd.Series) -> str:
    """bool, num, datetime, str, list or empty (all null)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {"boolean": "bool", "integer": "num", "floating": "num", "mixed-integer-float": "num",
            "decimal": "num", "string": "str", "categorical": "str", "datetime64": "datetime",
            "datetime": "datetime", "empty": "empty"}.get(inferred, "list" if inferred == "mixed"
                                                          and series.map(_is_seq).any() else "str")


def _is_seq(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def compare(values: pd.Series | np.ndarray, op: str, value: Any) -> np.ndarray:
    """Boolean mask of ``values op value``; nulls satisfy only is_null, != and not_in."""
    if op in ("!=", "not_in", "not_null"):
        return ~compare(values, {"!=": "==", "not_in": "in", "not_null": "is_null"}[op], value)
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if op == "is_null":
        out = s.isna()
    elif op == "in":
        out = s.isin(list(value))
    elif op == "between":
        out = (s >= value[0]) & (s <= value[1])
    elif op == "==":
        out = s == value
    else:
        out = {"<": s.lt, "<=": s.le, ">": s.gt, ">=": s.ge}[op](value)
    return out.to_numpy(dtype=bool, na_value=False)


class EvalFrame:
    """Candidate rows plus the context tables they index into."""

    def __init__(self, rows: pd.DataFrame, ctx: RuleContext, source: str | None = None) -> None:
        self.rows = rows
        self.ctx = ctx
        self.tables = {"row": rows, "user": ctx.users, "item": ctx.items}
        self.user_pos = self._positions("user_idx", len(ctx.users), source)
        self.item_pos = self._positions("item_idx", len(ctx.items), source)
        self._kinds: dict[tuple[str, str], str] = {}

    def _positions(self, key: str, n: int, source: str | None) -> np.ndarray:
        pos = self.rows[key].to_numpy()
        if not pd.api.types.is_integer_dtype(pos.dtype):
            raise DataError(f"candidates: {key} must be integer, got {pos.dtype}", file=source,
                            column=key)
        bad = np.flatnonzero((pos < 0) | (pos >= n))
        if bad.size:
            raise DataError(f"candidates: {key} {pos[bad[0]]} is not in the dataset (0..{n - 1})",
                            file=source, row=int(bad[0]), column=key)
        return pos.astype(np.int64, copy=False)

    def resolve(self, name: str) -> tuple[str, str] | str:
        """(scope, column) of a column name, or an error message."""
        if name.startswith(("user.", "item.")):
            scope, col = name.split(".", 1)
            return (scope, col) if col in self.tables[scope].columns else f"unknown column {name!r}"
        if name in self.rows.columns:
            return "row", name
        in_user, in_item = name in self.ctx.users.columns, name in self.ctx.items.columns
        if in_user and in_item:
            return f"ambiguous column {name!r} (in users and items): write user.{name} or item.{name}"
        if in_user or in_item:
            return ("user" if in_user else "item"), name
        return f"unknown column {name!r}"

    def where(self, name: str) -> tuple[str, str]:
        found = self.resolve(name)
        if isinstance(found, str):
            raise KeyError(found)
        return found

    def kind(self, name: str) -> str:
        key = self.where(name)
        if key not in self._kinds:
            self._kinds[key] = column_kind(self.tables[key[0]][key[1]])
        return self._kinds[key]

    def scope(self, cond: Condition) -> str:
        """user / item when every column lives there, else row."""
        scopes = {self.where(c)[0] for c in columns_of(cond)}
        return scopes.pop() if len(scopes) == 1 else "row"

    def gather(self, values: np.ndarray, scope: str) -> np.ndarray:
        """Table-level values onto the rows."""
        if scope == "row":
            return values
        return values[self.user_pos if scope == "user" else self.item_pos]

    def values(self, name: str, level: str) -> pd.Series:
        """A column at ``level`` (row values gathered from the user / item table)."""
        scope, col = self.where(name)
        series = self.tables[scope][col]
        if scope == level:
            return series
        return pd.Series(self.gather(series.to_numpy(), scope))

    def mask(self, cond: Condition, level: str = "row") -> np.ndarray:
        """Evaluate ``cond`` at ``level`` (row, user or item); nodes are evaluated at their scope."""
        scope = self.scope(cond)
        if scope != level and scope != "row":
            return self.gather(self.mask(cond, scope), scope)
        if isinstance(cond, Leaf):
            if cond.ref is not None:
                return compare(self.values(cond.column, level), cond.op,
                               self.values(cond.ref, level).to_numpy())
            value = cond.value
            if self.kind(cond.column) == "datetime" and value is not None:
                value = (tuple(pd.Timestamp(v) for v in value) if isinstance(value, tuple)
                         else pd.Timestamp(value))
            return compare(self.values(cond.column, level), cond.op, value)
        if isinstance(cond, Not):
            return ~self.mask(cond.item, level)
        parts = [self.mask(c, level) for c in cond.items]
        return reduce(np.logical_and if isinstance(cond, All) else np.logical_or, parts)
