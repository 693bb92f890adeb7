"""Typed generator configuration: parsed from the ``generator:`` block of conf/data/synthetic.yaml.

Every key is required (the YAML holds the values); unknown keys, wrong types and out-of-range
values raise :class:`~recsys.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Union, get_args, get_origin, get_type_hints

from recsys.errors import ConfigError

GENERATOR_VERSION = "1"
SHAPES: tuple[str, ...] = ("shirt", "jacket", "trousers", "dress", "skirt", "shoe", "bag", "hat")
PATTERNS: tuple[str, ...] = ("plain", "stripes", "dots", "checks", "zigzag", "diagonal")
EVENT_CHANNELS: tuple[str, ...] = ("app", "web", "store")
# Keys that change how fast a world is built, never what it contains: left out of the hash.
_RUNTIME_KEYS = ("image_workers", "parallel_min_images")


@dataclass(frozen=True)
class CategorySpec:
    shape: str
    weight: float
    median_price: float
    price_sigma: float
    season_peak_day: int
    seasonality: float


@dataclass(frozen=True)
class UserConfig:
    age_mean: float
    age_sd: float
    age_min: int
    age_max: int
    minor_age: int
    missing_rate: float
    late_fraction: float
    marketing_consent: float
    social_image_consent: float
    image_fraction: float
    max_images: int
    genders: dict[str, float]
    regions: list[str]
    occupations: list[str]
    income_bands: list[str]
    income_price_sensitivity: list[float]
    preferred_channels: dict[str, float]
    channels: dict[str, float]
    channel_alpha: float
    active_hours: list[int]
    hour_sd: float
    taste_alpha: float
    segment_alpha: float
    price_sensitivity_sigma: float
    activity_sigma: float
    loyalty_a: float
    loyalty_b: float


@dataclass(frozen=True)
class ItemConfig:
    n_brands: int
    late_fraction: float
    history_days: int
    out_of_stock_fraction: float
    stock_mean: float
    age_restricted_fraction: float
    margin_a: float
    margin_b: float
    brand_price_sigma: float
    sale_fraction: float
    eco_fraction: float
    attribute_alpha: float
    categories: dict[str, CategorySpec]
    colours: dict[str, str]
    styles: dict[str, str]


@dataclass(frozen=True)
class SessionConfig:
    candidates: int
    intent_share: float
    views_mean: float
    exposure_weight: float
    weekend_boost: float


@dataclass(frozen=True)
class FunnelConfig:
    click: float
    cart: float
    purchase: float
    favorite: float
    utility_slope: float
    multi_quantity_rate: float
    promo_rate: float
    promo_discount: float
    sale_discount: float
    repeat_rate: float
    repeat_gap_days: float
    max_repeats: int


@dataclass(frozen=True)
class UtilityConfig:
    colour: float
    style: float
    category: float
    brand_loyalty: float
    popularity: float
    seasonality: float
    novelty: float
    novelty_days: float
    taste_floor: float


@dataclass(frozen=True)
class WorldConfig:
    seed: int
    n_users: int
    n_items: int
    n_days: int
    end_date: str
    final_days: int
    sessions_per_user: float
    images: bool
    image_size: int
    social_images: bool
    image_workers: int
    parallel_min_images: int
    users: UserConfig
    items: ItemConfig
    sessions: SessionConfig
    funnel: FunnelConfig
    utility: UtilityConfig

    @property
    def colour_rgb(self) -> list[tuple[int, int, int]]:
        """Colours of ``items.colours`` as RGB triples, in vocabulary order."""
        return [_hex_rgb(h) for h in self.items.colours.values()]


def parse_config(cfg: Mapping[str, Any]) -> WorldConfig:
    """Build a validated :class:`WorldConfig` from the generator block (or a data config holding one)."""
    raw = _to_plain(cfg)
    if isinstance(raw, dict) and "generator" in raw and isinstance(raw["generator"], dict):
        raw = raw["generator"]
    if not isinstance(raw, dict):
        raise ConfigError("generator: expected a mapping of generator settings")
    world = _build(WorldConfig, raw, "generator")
    _validate(world)
    return world


def config_hash(world: WorldConfig) -> str:
    """Stable hash of everything that determines the generated world."""
    payload = dataclasses.asdict(world)
    for key in _RUNTIME_KEYS:
        payload.pop(key)
    text = json.dumps({"version": GENERATOR_VERSION, "config": payload}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_dict(world: WorldConfig) -> dict[str, Any]:
    """The config as plain JSON-ready data."""
    return dataclasses.asdict(world)


def _to_plain(cfg: Any) -> Any:
    """OmegaConf containers and other mappings become plain dicts / lists."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(cfg, Mapping):
        return {str(k): _to_plain(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [_to_plain(v) for v in cfg]
    return cfg


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


def _hex_rgb(code: str) -> tuple[int, int, int]:
    h = code.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"generator.{key}: {message}")


def _unit(value: float, key: str) -> None:
    _check(0.0 <= value <= 1.0, key, f"must lie in [0, 1], got {value}")


def _positive(value: float, key: str) -> None:
    _check(value > 0, key, f"must be > 0, got {value}")


def _validate(w: WorldConfig) -> None:
    for key in ("n_users", "n_items", "n_days", "image_size", "image_workers", "sessions_per_user"):
        _positive(getattr(w, key), key)
    _check(w.parallel_min_images >= 0, "parallel_min_images", "must be >= 0")
    _check(w.image_size >= 16, "image_size", f"must be >= 16 pixels, got {w.image_size}")
    _check(0 < w.final_days < w.n_days, "final_days", f"must lie in (0, n_days), got {w.final_days}")
    try:
        date.fromisoformat(w.end_date)
    except ValueError:
        _check(False, "end_date", f"expected an ISO date YYYY-MM-DD, got {w.end_date!r}")
    _validate_users(w.users)
    _validate_items(w.items)
    s, f, u = w.sessions, w.funnel, w.utility
    _check(s.candidates >= 2, "sessions.candidates", "must be >= 2")
    _check(s.views_mean >= 1, "sessions.views_mean", "must be >= 1")
    _unit(s.intent_share, "sessions.intent_share")
    _positive(s.weekend_boost, "sessions.weekend_boost")
    for key in ("click", "cart", "purchase", "favorite"):
        value = getattr(f, key)
        _check(0 < value < 1, f"funnel.{key}", f"must lie in (0, 1), got {value}")
    for key in ("multi_quantity_rate", "promo_rate", "promo_discount", "sale_discount"):
        _unit(getattr(f, key), f"funnel.{key}")
    _unit(f.repeat_rate, "funnel.repeat_rate")
    _positive(f.repeat_gap_days, "funnel.repeat_gap_days")
    _check(f.max_repeats >= 0, "funnel.max_repeats", "must be >= 0")
    _positive(u.novelty_days, "utility.novelty_days")
    _positive(u.taste_floor, "utility.taste_floor")


def _validate_users(u: UserConfig) -> None:
    _check(0 <= u.age_min <= u.age_max, "users.age_min", "must be <= users.age_max")
    _positive(u.age_sd, "users.age_sd")
    for key in ("missing_rate", "late_fraction", "marketing_consent", "social_image_consent",
                "image_fraction"):
        _unit(getattr(u, key), f"users.{key}")
    _check(u.max_images >= 1, "users.max_images", "must be >= 1")
    _check(all(p >= 0 for p in u.genders.values()) and sum(u.genders.values()) > 0,
           "users.genders", "weights must be >= 0 with a positive sum")
    _check(len(u.income_price_sensitivity) == len(u.income_bands), "users.income_price_sensitivity",
           f"needs one value per income band ({len(u.income_bands)})")
    _check(sorted(u.channels) == sorted(EVENT_CHANNELS), "users.channels",
           f"must name exactly the channels {list(EVENT_CHANNELS)}")
    _check(all(0 <= h <= 23 for h in u.active_hours), "users.active_hours", "hours lie in 0..23")
    for key in ("channel_alpha", "taste_alpha", "segment_alpha", "loyalty_a", "loyalty_b",
                "hour_sd"):
        _positive(getattr(u, key), f"users.{key}")


def _validate_items(it: ItemConfig) -> None:
    _check(it.n_brands >= 1, "items.n_brands", "must be >= 1")
    _check(it.history_days >= 0, "items.history_days", "must be >= 0")
    for key in ("late_fraction", "out_of_stock_fraction", "age_restricted_fraction",
                "sale_fraction", "eco_fraction"):
        _unit(getattr(it, key), f"items.{key}")
    for key in ("margin_a", "margin_b", "stock_mean", "attribute_alpha"):
        _positive(getattr(it, key), f"items.{key}")
    for name, cat in it.categories.items():
        key = f"items.categories.{name}"
        _check(cat.shape in SHAPES, f"{key}.shape", f"unknown shape {cat.shape!r}; use {SHAPES}")
        _positive(cat.median_price, f"{key}.median_price")
        _positive(cat.weight, f"{key}.weight")
        _check(cat.price_sigma >= 0, f"{key}.price_sigma", "must be >= 0")
    for name, pattern in it.styles.items():
        _check(pattern in PATTERNS, f"items.styles.{name}",
               f"unknown pattern {pattern!r}; use {PATTERNS}")
    for name, code in it.colours.items():
        ok = len(code) == 7 and code[0] == "#"
        try:
            int(code[1:], 16)
        except ValueError:
            ok = False
        _check(ok, f"items.colours.{name}", f"expected a colour like '#1d4ed8', got {code!r}")
