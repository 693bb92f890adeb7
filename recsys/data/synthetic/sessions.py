"""Shopping sessions (who, when, through which channel, with which intent) and their candidate items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.sampling import categorical_rows

DAY_S = 86_400


@dataclass(frozen=True)
class Sessions:
    """One row per session; ``time_s`` counts seconds from the window start."""

    user: np.ndarray
    day: np.ndarray
    time_s: np.ndarray
    channel: np.ndarray  # index into config.EVENT_CHANNELS
    intent: np.ndarray  # category the session is browsing

    def __len__(self) -> int:
        return len(self.user)

    def block(self, lo: int, hi: int) -> Sessions:
        return Sessions(*(a[lo:hi] for a in (self.user, self.day, self.time_s, self.channel,
                                             self.intent)))


def make_sessions(
    w: WorldConfig, rng: np.random.Generator, pop: Population, start: np.datetime64
) -> Sessions:
    """Poisson session counts per user, days weighted towards weekends, hours around the user's own."""
    n_days = w.n_days
    dow = (start.astype("datetime64[D]").astype(np.int64) + 3 + np.arange(n_days)) % 7  # Mon = 0
    day_weight = np.where(dow >= 5, w.sessions.weekend_boost, 1.0)
    accept = day_weight / day_weight.max()
    active_days = n_days - pop.start_day
    mean = w.sessions_per_user * pop.activity * active_days / n_days / accept.mean()
    counts = rng.poisson(mean)
    user = np.repeat(np.arange(w.n_users), counts)
    day = pop.start_day[user] + (rng.random(len(user)) * active_days[user]).astype(np.int64)
    keep = rng.random(len(user)) < accept[day]
    user, day = user[keep], day[keep]
    n = len(user)
    hour = np.mod(np.round(pop.active_hour[user] + rng.normal(0.0, w.users.hour_sd, n)), 24)
    time_s = day * DAY_S + hour.astype(np.int64) * 3600 + rng.integers(0, 3600, n)
    channel = categorical_rows(rng, pop.channel_mix[user])
    intent = categorical_rows(rng, pop.category_taste[user])
    return Sessions(user=user, day=day, time_s=time_s, channel=channel, intent=intent)


class CandidateSampler:
    """Draws candidate items per session: part from the intended category, part from the catalogue,
    both weighted by exposure ``exp(exposure_weight * popularity)`` (inverse-CDF, one searchsorted)."""

    def __init__(self, w: WorldConfig, cat: Catalogue) -> None:
        weights = np.exp(w.sessions.exposure_weight * cat.popularity)
        self._order = np.argsort(cat.category, kind="stable")
        self._cum = np.cumsum(weights[self._order])
        self._total = float(self._cum[-1])
        sums = np.bincount(cat.category, weights=weights, minlength=len(w.items.categories))
        # A category without items falls back to the whole catalogue.
        self._begin = np.where(sums > 0, np.cumsum(sums) - sums, 0.0)
        self._span = np.where(sums > 0, sums, self._total)
        self._k = w.sessions.candidates
        self._intent_share = w.sessions.intent_share

    def sample(self, rng: np.random.Generator, intent: np.ndarray) -> np.ndarray:
        """(n_sessions, candidates) item indices, each row sorted (duplicates adjacent)."""
        shape = (len(intent), self._k)
        use_intent = rng.random(shape) < self._intent_share
        base = np.where(use_intent, self._begin[intent][:, None], 0.0)
        span = np.where(use_intent, self._span[intent][:, None], self._total)
        target = base + rng.random(shape) * span
        pos = np.minimum(np.searchsorted(self._cum, target, side="right"), len(self._cum) - 1)
        return np.sort(self._order[pos], axis=1)
