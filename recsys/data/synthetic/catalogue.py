"""Synthetic product catalogue: attributes, prices, stock, release dates and latent popularity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.synthetic.config import ITEM_DIR, WorldConfig
from recsys.data.synthetic.sampling import categorical, id_strings

_SEASONS = ("winter", "spring", "summer", "autumn")  # tag of the quarter a category peaks in


@dataclass(frozen=True)
class Catalogue:
    """The items table plus the latent variables the interaction model reads (row = item index)."""

    table: pd.DataFrame
    category: np.ndarray
    colour: np.ndarray
    style: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    on_sale: np.ndarray
    popularity: np.ndarray
    release_day: np.ndarray  # day index relative to the window start (negative = before it)
    age_restricted: np.ndarray
    brand_weights: np.ndarray


def make_catalogue(w: WorldConfig, rng: np.random.Generator, start: np.datetime64) -> Catalogue:
    """Draw ``w.n_items`` products; ``start`` is midnight of the window's first day."""
    it, n = w.items, w.n_items
    cats = list(it.categories.values())
    category = categorical(rng, np.array([c.weight for c in cats]), n)
    colour_rates = rng.dirichlet(np.full(len(it.colours), it.attribute_alpha))
    style_rates = rng.dirichlet(np.full(len(it.styles), it.attribute_alpha))
    colour = categorical(rng, colour_rates, n)
    style = categorical(rng, style_rates, n)
    brand_pop = rng.normal(0.0, 0.7, it.n_brands)
    brand_weights = np.exp(brand_pop)
    brand_weights /= brand_weights.sum()
    brand = categorical(rng, brand_weights, n)
    brand_tier = rng.lognormal(0.0, it.brand_price_sigma, it.n_brands)

    median = np.array([c.median_price for c in cats])[category]
    sigma = np.array([c.price_sigma for c in cats])[category]
    price = np.round(np.maximum(median * brand_tier[brand] * rng.lognormal(0.0, sigma), 1.0), 2)
    popularity = rng.normal(0.0, 1.0, n) + 0.5 * brand_pop[brand]

    late = rng.random(n) < it.late_fraction
    final_start = w.n_days - w.final_days
    release_day = np.where(
        late,
        rng.integers(final_start, w.n_days, n),
        rng.integers(-it.history_days, final_start, n),
    )
    release = start + release_day.astype("timedelta64[D]")
    stock = rng.poisson(it.stock_mean, n) + 1
    stock[rng.random(n) < it.out_of_stock_fraction] = 0
    premium = brand_tier[brand] >= np.quantile(brand_tier, 0.75)
    margin = np.clip(rng.beta(it.margin_a, it.margin_b, n) + 0.1 * premium, 0.0, 1.0)
    age_restricted = rng.random(n) < it.age_restricted_fraction
    on_sale = rng.random(n) < it.sale_fraction
    eco = rng.random(n) < it.eco_fraction

    peak = np.array([c.season_peak_day for c in cats])[category]
    peak_date = np.datetime64("2001-01-01") + (peak - 1).astype("timedelta64[D]")
    month = peak_date.astype("datetime64[M]").astype(np.int64) % 12 + 1
    season = (month % 12) // 3  # Dec-Feb winter, Mar-May spring, Jun-Aug summer, Sep-Nov autumn
    bestseller = popularity >= np.quantile(popularity, 0.9)
    tag_parts = [
        (np.ones(n, dtype=bool), np.asarray(_SEASONS, dtype=object)[season]),
        (on_sale, "sale"),
        (late, "new"),
        (premium, "premium"),
        (eco, "eco"),
        (bestseller, "bestseller"),
    ]
    tags = _join_tags(n, tag_parts)

    item_id = id_strings("i", n)
    if w.images:
        image_path = np.array([f"{ITEM_DIR}/{i}.png" for i in item_id], dtype=object)
    else:
        image_path = np.full(n, None, dtype=object)
    table = pd.DataFrame(
        {
            "item_id": item_id,
            "category": np.asarray(list(it.categories), dtype=object)[category],
            "brand": np.asarray(brand_names(it.n_brands), dtype=object)[brand],
            "colour": np.asarray(list(it.colours), dtype=object)[colour],
            "style": np.asarray(list(it.styles), dtype=object)[style],
            "tags": tags,
            "price": price.astype(np.float64),
            "stock": stock.astype(np.int64),
            "margin": np.round(margin, 4).astype(np.float64),
            "age_restricted": age_restricted,
            "release_date": release.astype("datetime64[ns]"),
            "image_path": image_path,
        }
    )
    return Catalogue(
        table=table,
        category=category,
        colour=colour,
        style=style,
        brand=brand,
        price=price,
        on_sale=on_sale,
        popularity=popularity,
        release_day=release_day,
        age_restricted=age_restricted,
        brand_weights=brand_weights,
    )


def brand_names(n_brands: int) -> list[str]:
    return [f"brand_{b + 1:02d}" for b in range(n_brands)]


def _join_tags(n: int, parts: list[tuple[np.ndarray, object]]) -> np.ndarray:
    """``|``-joined tags per item, in a fixed order."""
    out = np.full(n, "", dtype=object)
    for mask, tag in parts:
        values = tag[mask] if isinstance(tag, np.ndarray) else tag
        sep = np.where(out[mask] == "", "", "|")
        out[mask] = out[mask] + sep + values
    return out
