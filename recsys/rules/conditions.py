"""A small, safe condition language over columns, parsed from the rules YAML.

A condition is a leaf ``{column: c, op: o, value: v}`` (or ``ref: other_column`` instead of
``value``) or a combinator ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``. Operators:
``== != < <= > >= in not_in is_null not_null between``. Nothing is evaluated as code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from recsys.rules.fields import Fields, type_ok

COMPARE = ("==", "!=", "<", "<=", ">", ">=")
ORDER = ("<", "<=", ">", ">=")
SET_OPS = ("in", "not_in")
NULL_OPS = ("is_null", "not_null")
OPS = (*COMPARE, *SET_OPS, *NULL_OPS, "between")


@dataclass(frozen=True)
class Leaf:
    """``column op value`` (or ``column op ref``); ``path`` locates it in the config."""

    column: str
    op: str
    value: Any
    ref: str | None
    path: str


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Leaf | All | AnyOf | Not


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def parse_condition(raw: Any, where: str, source: str | None) -> Condition:
    """Parse one condition; RuleError names the field on an unknown key, operator or bad value."""
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ("all", "any", "not"):
        key, body = next(iter(raw.items()))
        if key == "not":
            return Not(parse_condition(body, f"{where}.not", source))
        f = Fields(raw, where, source, ("all", "any"))
        items = f.get(key, list)
        if not items:
            f.fail("needs at least one condition", key)
        parsed = tuple(parse_condition(c, f"{where}.{key}[{i}]", source) for i, c in enumerate(items))
        return All(parsed) if key == "all" else AnyOf(parsed)
    f = Fields(raw, where, source, ("column", "op", "value", "ref"))
    column = f.get("column", str)
    op = f.get("op", str)
    if op not in OPS:
        f.fail(f"unknown operator {op!r} (allowed: {', '.join(OPS)})", "op")
    ref = f.opt("ref", str)
    value: Any = f.raw.get("value")
    if op in NULL_OPS:
        if "value" in f.raw or ref is not None:
            f.fail(f"operator {op!r} takes no value", "value")
    elif ref is not None:
        if "value" in f.raw:
            f.fail("give either value or ref, not both", "ref")
        if op not in COMPARE:
            f.fail(f"ref works with {', '.join(COMPARE)} only", "ref")
    elif "value" not in f.raw:
        f.fail(f"operator {op!r} needs a value", "value")
    elif op in SET_OPS:
        if not isinstance(value, list) or not all(_scalar(v) for v in value):
            f.fail(f"wrong type: {op!r} needs a list of values, got {value!r}", "value")
        value = tuple(value)
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_scalar(v) for v in value)):
            f.fail(f"wrong type: 'between' needs [low, high], got {value!r}", "value")
        if all(type_ok(v, float) for v in value) and value[0] > value[1]:
            f.fail(f"'between' bounds are reversed: {value!r}", "value")
        value = tuple(value)
    elif not _scalar(value) or value is None:
        f.fail(f"wrong type: {op!r} needs a single value, got {value!r}", "value")
    return Leaf(column, op, value, ref, where)


def leaves(cond: Condition) -> Iterator[Leaf]:
    """Every leaf of ``cond``."""
    if isinstance(cond, Leaf):
        yield cond
    elif isinstance(cond, Not):
        yield from leaves(cond.item)
    else:
        for c in cond.items:
            yield from leaves(c)


def columns_of(cond: Condition) -> set[str]:
    """Every column a condition reads."""
    out: set[str] = set()
    for leaf in leaves(cond):
        out.add(leaf.column)
        if leaf.ref is not None:
            out.add(leaf.ref)
    return out


def _plain(cond: Condition) -> Any:
    if isinstance(cond, Leaf):
        return [cond.column, cond.op, list(cond.value) if isinstance(cond.value, tuple)
                else cond.value, cond.ref]
    if isinstance(cond, Not):
        return ["not", _plain(cond.item)]
    tag = "all" if isinstance(cond, All) else "any"
    return [tag, sorted(json.dumps(_plain(c), sort_keys=True, default=str) for c in cond.items)]


def canonical(cond: Condition) -> str:
    """A canonical text of ``cond`` (order of all/any members ignored) to compare conditions."""
    return json.dumps(_plain(cond), sort_keys=True, default=str)
