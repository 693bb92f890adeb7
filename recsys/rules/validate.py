"""Check a rules config against the columns (and their types) that a frame actually has."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd

from recsys.errors import RuleError
from recsys.rules.conditions import NULL_OPS, ORDER, Condition, Leaf, leaves
from recsys.rules.config import RulesConfig
from recsys.rules.fields import type_ok
from recsys.rules.frame import EvalFrame

_ALL = ("row", "user", "item")
ASSOCIATION_COLUMNS = ("level", "antecedents", "consequents", "lift")


def _fail(path: str, message: str, source: str | None, column: str | None = None) -> None:
    raise RuleError(f"rules {path}: {message}", file=source, column=column)


def _value_ok(kind: str, value: Any) -> bool:
    if kind == "empty":
        return True
    if kind == "num":
        return type_ok(value, float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "datetime":
        try:
            pd.Timestamp(value)
        except (TypeError, ValueError):
            return False
        return isinstance(value, str)
    return isinstance(value, str)


def _column(frame: EvalFrame, name: str, path: str, scopes: Collection[str],
            source: str | None) -> str:
    """Resolve ``name`` for a field at ``path``; return its kind."""
    found = frame.resolve(name)
    if isinstance(found, str):
        _fail(path, found, source, name)
        raise AssertionError  # unreachable: _fail raises
    if found[0] not in scopes:
        _fail(path, f"column {name!r} is a {found[0]} column; here only {'/'.join(scopes)} "
              "columns are allowed", source, name)
    kind = frame.kind(name)
    if kind == "list":
        _fail(path, f"column {name!r} holds lists and cannot be compared", source, name)
    return kind


def _leaf(frame: EvalFrame, leaf: Leaf, scopes: Collection[str], source: str | None) -> None:
    kind = _column(frame, leaf.column, f"{leaf.path}.column", scopes, source)
    if leaf.op in NULL_OPS:
        return
    if leaf.ref is not None:
        other = _column(frame, leaf.ref, f"{leaf.path}.ref", scopes, source)
        if "empty" not in (kind, other) and kind != other:
            _fail(f"{leaf.path}.ref", f"wrong type: {leaf.column!r} ({kind}) vs {leaf.ref!r} "
                  f"({other})", source, leaf.ref)
    if leaf.op in (*ORDER, "between") and kind in ("bool", "str"):
        _fail(f"{leaf.path}.op", f"wrong type: {leaf.op!r} needs a numeric or datetime column, "
              f"{leaf.column!r} is {kind}", source, leaf.column)
    if leaf.ref is not None:
        return
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    bad = [v for v in values if not _value_ok(kind, v)]
    if bad:
        _fail(f"{leaf.path}.value", f"wrong type: {bad[0]!r} cannot be compared with "
              f"{kind} column {leaf.column!r}", source, leaf.column)


def check_condition(frame: EvalFrame, cond: Condition | None, scopes: Collection[str],
                    source: str | None) -> None:
    """Every leaf names an existing column of an allowed scope, with a value of its type."""
    if cond is not None:
        for leaf in leaves(cond):
            _leaf(frame, leaf, scopes, source)


def validate_rules(cfg: RulesConfig, frame: EvalFrame) -> None:
    """Raise RuleError on the first rule that does not fit ``frame``."""
    src = cfg.source
    for f in cfg.filters:
        check_condition(frame, f.when, _ALL, src)
    for i, b in enumerate(cfg.boosts):
        check_condition(frame, b.when, _ALL, src)
        if b.add_column is not None:
            path = f"boosts[{i}] {b.name!r}.add_column"
            if _column(frame, b.add_column, path, _ALL, src) not in ("num", "empty"):
                _fail(path, f"wrong type: {b.add_column!r} is not numeric", src, b.add_column)
        if b.kind == "association":
            missing = [c for c in ASSOCIATION_COLUMNS if c not in frame.ctx.association.columns]
            if missing:
                _fail(f"boosts[{i}] {b.name!r}", f"association rules lack column {missing[0]!r}",
                      src, missing[0])
    for p in cfg.promotions:
        check_condition(frame, p.when, ("user",), src)
    for r in cfg.pricing:
        check_condition(frame, r.when, ("item",), src)
    _column(frame, "item.price", "pricing (item price)", ("item",), src)
    for c in cfg.channels.values():
        check_condition(frame, c.when, ("user",), src)
    _column(frame, cfg.caps.category_column, "caps.category_column", ("item",), src)
