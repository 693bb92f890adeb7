"""Latent utility of showing an item to a user in a session, and the price the user would pay.

utility = taste . attributes + brand loyalty + popularity + seasonality + novelty
          - price_sensitivity * log(paid / reference price);  -inf before release, for duplicates
          and for age-restricted items shown to minors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.sessions import DAY_S, Sessions


@dataclass(frozen=True)
class UtilityModel:
    """Pre-computed per-user and per-(day, category) tables for fast gathering."""

    log_colour: np.ndarray  # (n_users, n_colours)
    log_style: np.ndarray
    log_category: np.ndarray
    season: np.ndarray  # (n_days, n_categories), already weighted
    reference_price: float

    @classmethod
    def build(cls, w: WorldConfig, pop: Population, cat: Catalogue, start: np.datetime64) -> UtilityModel:
        u = w.utility

        def log_taste(taste: np.ndarray, weight: float) -> np.ndarray:
            return weight * np.log(taste.shape[1] * taste + u.taste_floor)

        cats = list(w.items.categories.values())
        peak = np.array([c.season_peak_day for c in cats], dtype=np.float64)
        amp = np.array([c.seasonality for c in cats]) * u.seasonality
        first_doy = (start - start.astype("datetime64[Y]")).astype(np.int64) + 1
        doy = first_doy + np.arange(w.n_days)
        season = amp[None, :] * np.cos(2 * np.pi * (doy[:, None] - peak[None, :]) / 365.25)
        return cls(
            log_colour=log_taste(pop.colour_taste, u.colour),
            log_style=log_taste(pop.style_taste, u.style),
            log_category=log_taste(pop.category_taste, u.category),
            season=season,
            reference_price=float(np.median(cat.price)),
        )


def paid_prices(
    w: WorldConfig, rng: np.random.Generator, cat: Catalogue, items: np.ndarray
) -> np.ndarray:
    """List price after the item's sale discount and a random promotion, rounded to cents."""
    f = w.funnel
    sale = np.where(cat.on_sale[items], 1.0 - f.sale_discount, 1.0)
    promo = np.where(rng.random(items.shape) < f.promo_rate, 1.0 - f.promo_discount, 1.0)
    return np.maximum(np.round(cat.price[items] * sale * promo, 2), 0.01)


def session_utilities(
    w: WorldConfig,
    model: UtilityModel,
    pop: Population,
    cat: Catalogue,
    sess: Sessions,
    cand: np.ndarray,
    paid: np.ndarray,
) -> np.ndarray:
    """(n_sessions, n_candidates) utilities; rows of ``cand`` must be sorted."""
    u = w.utility
    user = sess.user[:, None]
    utility = (
        model.log_colour[user, cat.colour[cand]]
        + model.log_style[user, cat.style[cand]]
        + model.log_category[user, cat.category[cand]]
        + u.brand_loyalty * pop.loyalty[user] * (cat.brand[cand] == pop.favourite_brand[user])
        + u.popularity * cat.popularity[cand]
        + model.season[sess.day[:, None], cat.category[cand]]
        - pop.price_sensitivity[user] * np.log(paid / model.reference_price)
    )
    age_days = sess.day[:, None] - cat.release_day[cand]
    utility += u.novelty * np.exp(-np.maximum(age_days, 0) / u.novelty_days)
    invalid = sess.time_s[:, None] < cat.release_day[cand] * DAY_S
    invalid |= pop.minor[user] & cat.age_restricted[cand]
    invalid[:, 1:] |= cand[:, 1:] == cand[:, :-1]
    return np.where(invalid, -np.inf, utility)
