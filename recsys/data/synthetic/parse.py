"""Parse and hash the generator configuration (plain dicts, OmegaConf or any mapping)."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from datetime import date
from typing import Any, Union, get_args, get_origin, get_type_hints

from recsys.config import as_dict
from recsys.data import fingerprint
from recsys.data.synthetic.config import GENERATOR_VERSION, WorldConfig
from recsys.data.synthetic.validate import validate
from recsys.errors import ConfigError

# Keys that change how fast a world is built, never what it contains: left out of the hash.
_RUNTIME_KEYS = ("image_workers", "parallel_min_images")


def parse_config(cfg: Mapping[str, Any]) -> WorldConfig:
    """Build a validated :class:`WorldConfig` from the generator block (or a data config holding one)."""
    if isinstance(cfg, Mapping) and "generator" in cfg:
        cfg = cfg["generator"]
    raw = as_dict(cfg, "generator")
    world = _build(WorldConfig, raw, "generator")
    validate(world)
    return world


def config_hash(world: WorldConfig) -> str:
    """Stable hash of everything that determines the generated world, the order of its named
    options included (categories, colours, styles, genders, channels are drawn by position, so
    listing them in another order makes another world)."""
    payload = dataclasses.asdict(world)
    for key in _RUNTIME_KEYS:
        payload.pop(key)
    return fingerprint.config_hash({"version": GENERATOR_VERSION, "config": _ordered(payload)})


def _ordered(value: Any) -> Any:
    """``value`` with every mapping turned into its list of [key, value] pairs, in order."""
    if isinstance(value, Mapping):
        return [[key, _ordered(v)] for key, v in value.items()]
    if isinstance(value, list | tuple):
        return [_ordered(v) for v in value]
    return value


def config_dict(world: WorldConfig) -> dict[str, Any]:
    """The config as plain JSON-ready data."""
    return dataclasses.asdict(world)


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{prefix}: unknown key(s) {unknown}; expected {names}")
    missing = [n for n in names if n not in raw]
    if missing:
        raise ConfigError(f"{prefix}: missing key(s) {missing}")
    return cls(**{n: _coerce(hints[n], raw[n], f"{prefix}.{n}") for n in names})


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key}: expected a non-empty list, got {value!r}")
        (inner,) = get_args(tp)
        return [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not value:
            raise ConfigError(f"{key}: expected a non-empty mapping, got {value!r}")
        _, inner = get_args(tp)
        return {str(k): _coerce(inner, v, f"{key}.{k}") for k, v in value.items()}
    if origin in (Union, types.UnionType):  # pragma: no cover - no optional keys today
        raise ConfigError(f"{key}: unsupported type {tp}")
    return _scalar(tp, value, key)


def _scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | date) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover
