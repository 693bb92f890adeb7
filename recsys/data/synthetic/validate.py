"""Range and vocabulary checks of a parsed generator configuration."""

from __future__ import annotations

from datetime import date

from recsys.data.synthetic.config import (
    EVENT_CHANNELS,
    PATTERNS,
    SHAPES,
    ItemConfig,
    UserConfig,
    WorldConfig,
)
from recsys.errors import ConfigError


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"generator.{key}: {message}")


def _unit(value: float, key: str) -> None:
    _check(0.0 <= value <= 1.0, key, f"must lie in [0, 1], got {value}")


def _positive(value: float, key: str) -> None:
    _check(value > 0, key, f"must be > 0, got {value}")


def validate(w: WorldConfig) -> None:
    """Raise ConfigError naming the first out-of-range key."""
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
    _unit(f.complement_rate, "funnel.complement_rate")
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
    for key in ("scene_sharpness", "channel_alpha", "taste_alpha", "segment_alpha", "loyalty_a", "loyalty_b",
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
