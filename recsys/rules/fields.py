"""Strict reading of one mapping of a rules config: unknown fields and wrong types raise RuleError."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from recsys.errors import RuleError

T = TypeVar("T")
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}


def type_ok(value: Any, typ: type) -> bool:
    """Is ``value`` of ``typ`` (ints are numbers, booleans are not)?"""
    if typ is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is dict:
        return isinstance(value, Mapping)
    return isinstance(value, typ)


class Fields:
    """Typed access to the fields of ``raw`` found at ``where`` (e.g. ``boosts[1] 'margin'``)."""

    def __init__(self, raw: Any, where: str, source: str | None, allowed: Collection[str]) -> None:
        self.where = where
        self.source = source
        if not isinstance(raw, Mapping):
            self.fail(f"expected a mapping, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            self.fail(f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")

    def fail(self, message: str, field: str | None = None) -> None:
        """Raise a RuleError naming the place (and field) in the rules config."""
        at = f"{self.where}.{field}" if field else self.where
        raise RuleError(f"rules {at}: {message}", file=self.source)

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def get(self, key: str, typ: type[T]) -> T:
        """A required field of type ``typ``."""
        if key not in self.raw or self.raw[key] is None:
            self.fail("missing required field", key)
        return self.check(key, self.raw[key], typ)

    def opt(self, key: str, typ: type[T]) -> T | None:
        """An optional field (absent or null gives None)."""
        return self.check(key, self.raw[key], typ) if self.has(key) else None

    def check(self, key: str, value: Any, typ: type[T]) -> T:
        if not type_ok(value, typ):
            self.fail(f"wrong type: expected {_TYPE_NAMES.get(typ, typ.__name__)}, "
                      f"got {type(value).__name__} {value!r}", key)
        return float(value) if typ is float else value  # type: ignore[return-value]

    def choice(self, key: str, options: Collection[str], default: str | None = None) -> str:
        """A string field among ``options`` (``default`` when absent, if given)."""
        if default is not None and not self.has(key):
            return default
        value = self.get(key, str)
        if value not in options:
            self.fail(f"unknown value {value!r} (expected one of: {', '.join(options)})", key)
        return value

    def number_list(self, key: str, length: int) -> list[float]:
        """A list of exactly ``length`` numbers."""
        values = self.get(key, list)
        if len(values) != length or not all(type_ok(v, float) for v in values):
            self.fail(f"wrong type: expected a list of {length} numbers, got {values!r}", key)
        return [float(v) for v in values]
