"""Planted co-purchase structure: each item has a complement in a paired category, and a session
purchase also buys that complement with probability ``funnel.complement_rate``.

Pairs and extra purchases come from their own random stream, so the other events of a world are
the same with and without them (``complement_rate: 0`` adds nothing).
"""

from __future__ import annotations

import numpy as np

from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.interactions import CART, PURCHASE, STORE, EventLog
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.sessions import DAY_S
from recsys.data.synthetic.utility import paid_prices


def complement_items(w: WorldConfig, rng: np.random.Generator, cat: Catalogue) -> np.ndarray:
    """Item index of each item's complement: categories are paired along one random cycle, and the
    complement is drawn from the paired category by exposure ``exp(exposure_weight * popularity)``."""
    n_cat = len(w.items.categories)
    cycle = rng.permutation(n_cat)
    paired = np.empty(n_cat, dtype=np.int64)
    paired[cycle] = np.roll(cycle, -1)  # no category is its own pair when there are two or more
    weights = np.exp(w.sessions.exposure_weight * cat.popularity)
    out = np.empty(len(cat.category), dtype=np.int64)
    for c in range(n_cat):
        members = np.flatnonzero(cat.category == c)
        pool = np.flatnonzero(cat.category == paired[c])
        pool = pool if pool.size else np.arange(len(cat.category))
        p = weights[pool] / weights[pool].sum()
        out[members] = rng.choice(pool, size=members.size, p=p)
    return out


def complement_purchases(
    w: WorldConfig, rng: np.random.Generator, pop: Population, cat: Catalogue, partner: np.ndarray,
    log: EventLog,
) -> EventLog:
    """Purchases of the complements of ``log``'s purchases, minutes after them, in the same channel
    (none of an item not yet released or age-restricted for a minor); online ones are carted
    10 seconds before."""
    src = log.take(np.flatnonzero(log.event == PURCHASE))
    n = len(src.user)
    item = partner[src.item]
    time_s = src.time_s + (30.0 + rng.exponential(240.0, n)).astype(np.int64)
    keep = rng.random(n) < w.funnel.complement_rate
    keep &= time_s >= cat.release_day[item] * DAY_S
    keep &= ~(pop.minor[src.user] & cat.age_restricted[item])
    price = paid_prices(w, rng, cat, item)
    idx = np.flatnonzero(keep)
    bought = EventLog(user=src.user[idx], item=item[idx], time_s=time_s[idx],
                      event=src.event[idx], quantity=np.ones(idx.size, np.int64), price=price[idx],
                      channel=src.channel[idx])
    carted = bought.take(np.flatnonzero(bought.channel != STORE))
    carted.event = np.full(len(carted.user), CART, dtype=np.int64)
    carted.time_s = carted.time_s - 10
    return EventLog.concat([carted, bought])
