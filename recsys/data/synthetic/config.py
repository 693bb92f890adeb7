"""Typed generator configuration: the ``generator:`` block of conf/data/synthetic.yaml.

Every key is required (the YAML holds the values); :func:`~recsys.data.synthetic.parse.parse_config`
builds these dataclasses and raises :class:`~recsys.errors.ConfigError` naming a bad key.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.data.synthetic.shapes import SILHOUETTES

GENERATOR_VERSION = "1"
SHAPES: tuple[str, ...] = tuple(SILHOUETTES)
PATTERNS: tuple[str, ...] = ("plain", "stripes", "dots", "checks", "zigzag", "diagonal")
EVENT_CHANNELS: tuple[str, ...] = ("app", "web", "store")
ITEM_DIR = "images/items"  # item shots, relative to the world root
USER_DIR = "images/users"  # users' social posts


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
    scene_sharpness: float
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
    complement_rate: float


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


def _hex_rgb(code: str) -> tuple[int, int, int]:
    h = code.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
