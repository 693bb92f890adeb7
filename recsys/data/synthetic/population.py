"""Synthetic customers: demographics, consents, PII columns and the latent taste behind their choices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.synthetic.config import EVENT_CHANNELS, WorldConfig
from recsys.data.synthetic.sampling import (
    categorical,
    categorical_rows,
    dirichlet_rows,
    id_strings,
    softmax_rows,
)

_FIRST = ("Alex", "Sam", "Maria", "John", "Lea", "Noah", "Emma", "Omar", "Yuki", "Ines", "Liam",
          "Sofia", "Ravi", "Chloe", "Ivan", "Nora", "Tom", "Aisha", "Lukas", "Mei")
_LAST = ("Smith", "Garcia", "Muller", "Rossi", "Kim", "Dubois", "Novak", "Silva", "Khan",
         "Jensen", "Tanaka", "Moreau", "Costa", "Berg", "Weber", "Lopez", "Olsen", "Patel")
_AGE_BANDS = np.array([25.0, 35.0, 50.0, 65.0])  # segment edges for the taste priors


@dataclass(frozen=True)
class Population:
    """The users table plus the latent variables the interaction model reads (row = user index)."""

    table: pd.DataFrame
    colour_taste: np.ndarray  # (n_users, n_colours), rows sum to 1
    style_taste: np.ndarray
    category_taste: np.ndarray
    price_sensitivity: np.ndarray
    loyalty: np.ndarray
    activity: np.ndarray
    favourite_brand: np.ndarray
    channel_mix: np.ndarray  # (n_users, len(EVENT_CHANNELS))
    active_hour: np.ndarray
    start_day: np.ndarray  # first day (0 = start of the window) the user can shop
    minor: np.ndarray
    n_images: np.ndarray  # social images posted (0 for users who post none)


def make_population(w: WorldConfig, rng: np.random.Generator, brand_weights: np.ndarray) -> Population:
    """Draw ``w.n_users`` customers with demographics and latent taste."""
    u, n = w.users, w.n_users
    age = np.clip(np.round(rng.normal(u.age_mean, u.age_sd, n)), u.age_min, u.age_max)
    age_z = (age - u.age_mean) / u.age_sd
    genders = list(u.genders)
    gender = categorical(rng, np.array(list(u.genders.values())), n)
    region = rng.integers(0, len(u.regions), n)
    occupation = rng.integers(0, len(u.occupations), n)
    # Income peaks in mid-life; higher bands lower the price sensitivity.
    n_bands = len(u.income_bands)
    income_mu = (n_bands - 1) * (0.3 + 0.45 * np.exp(-(((age - 47.0) / 16.0) ** 2)))
    income = np.clip(np.round(rng.normal(income_mu, 0.8)), 0, n_bands - 1).astype(np.int64)
    pref_names = list(u.preferred_channels)
    pref_slope = np.array(list(u.preferred_channels.values()))
    preferred = categorical_rows(rng, softmax_rows(age_z[:, None] * pref_slope[None, :]))

    segment = np.searchsorted(_AGE_BANDS, age, side="right") * len(genders) + gender
    n_segments = (len(_AGE_BANDS) + 1) * len(genders)
    colour_taste = _taste(rng, segment, n_segments, len(w.items.colours), u.taste_alpha, u.segment_alpha)
    style_taste = _taste(rng, segment, n_segments, len(w.items.styles), u.taste_alpha, u.segment_alpha)
    category_taste = _taste(
        rng, segment, n_segments, len(w.items.categories), u.taste_alpha, u.segment_alpha
    )
    income_mult = np.asarray(u.income_price_sensitivity)[income]
    sigma = u.price_sensitivity_sigma
    price_sensitivity = income_mult * rng.lognormal(-sigma**2 / 2, sigma, n)
    loyalty = rng.beta(u.loyalty_a, u.loyalty_b, n)
    activity = rng.lognormal(-(u.activity_sigma**2) / 2, u.activity_sigma, n)
    favourite_brand = categorical(rng, brand_weights, n)
    channel_slope = np.array([u.channels[c] for c in EVENT_CHANNELS])
    channel_prior = softmax_rows(age_z[:, None] * channel_slope[None, :])
    channel_mix = dirichlet_rows(rng, u.channel_alpha * len(EVENT_CHANNELS) * channel_prior)
    modes = np.asarray(u.active_hours)[rng.integers(0, len(u.active_hours), n)]
    active_hour = np.mod(np.round(modes + rng.normal(0.0, 1.0, n)), 24).astype(np.int64)
    late = rng.random(n) < u.late_fraction
    final_start = w.n_days - w.final_days
    start_day = np.where(late, rng.integers(final_start, w.n_days, n), 0)
    marketing = rng.random(n) < u.marketing_consent
    social = rng.random(n) < u.social_image_consent
    posts = rng.random(n) < u.image_fraction
    n_images = np.where(posts, rng.integers(1, u.max_images + 1, n), 0)

    first = rng.integers(0, len(_FIRST), n)
    last = rng.integers(0, len(_LAST), n)
    names = [f"{_FIRST[a]} {_LAST[b]}" for a, b in zip(first, last, strict=True)]
    emails = [
        f"{_FIRST[a].lower()}.{_LAST[b].lower()}{i}@example.com"
        for i, (a, b) in enumerate(zip(first, last, strict=True))
    ]
    postal = [f"{r + 1}{d:04d}" for r, d in zip(region, rng.integers(0, 10000, n), strict=True)]

    miss = rng.random((3, n)) < u.missing_rate
    table = pd.DataFrame(
        {
            "user_id": id_strings("u", n),
            "age": np.where(miss[0], np.nan, age).astype(np.float64),
            "gender": np.asarray(genders, dtype=object)[gender],
            "region": _blank(np.asarray(u.regions, dtype=object)[region], miss[1]),
            "occupation": _blank(np.asarray(u.occupations, dtype=object)[occupation], miss[2]),
            "income_band": np.asarray(u.income_bands, dtype=object)[income],
            "marketing_consent": marketing,
            "social_image_consent": social,
            "preferred_channel": np.asarray(pref_names, dtype=object)[preferred],
            "active_hour": active_hour,
            "name": np.asarray(names, dtype=object),
            "email": np.asarray(emails, dtype=object),
            "postal_code": np.asarray(postal, dtype=object),
        }
    )
    return Population(
        table=table,
        colour_taste=colour_taste,
        style_taste=style_taste,
        category_taste=category_taste,
        price_sensitivity=price_sensitivity,
        loyalty=loyalty,
        activity=activity,
        favourite_brand=favourite_brand,
        channel_mix=channel_mix,
        active_hour=active_hour,
        start_day=start_day,
        minor=age < u.minor_age,
        n_images=n_images,
    )


def _blank(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``values`` with None where ``missing``."""
    out = values.copy()
    out[missing] = None
    return out


def _taste(
    rng: np.random.Generator,
    segment: np.ndarray,
    n_segments: int,
    n_options: int,
    taste_alpha: float,
    segment_alpha: float,
) -> np.ndarray:
    """Per-user Dirichlet taste around an age x gender segment prior (so demographics carry signal)."""
    priors = rng.dirichlet(np.full(n_options, segment_alpha), n_segments)
    return dirichlet_rows(rng, taste_alpha * n_options * priors[segment])
