"""Event log from the utility model: softmax views over each session's candidates, then a
click -> cart -> purchase funnel driven by utility, favourites, and repeat purchases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import EVENT_CHANNELS, WorldConfig
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.sampling import categorical_rows, logit, sigmoid
from recsys.data.synthetic.sessions import DAY_S, CandidateSampler, Sessions, make_sessions
from recsys.data.synthetic.utility import UtilityModel, paid_prices, session_utilities

# Funnel order; also the tie-break order of events at the same second.
FUNNEL: tuple[str, ...] = ("view", "click", "favorite", "cart", "purchase")
VIEW, CLICK, FAVORITE, CART, PURCHASE = range(len(FUNNEL))
STORE = EVENT_CHANNELS.index("store")
_BLOCK = 1 << 16  # sessions simulated at once (bounds memory; part of the generator's output)


@dataclass
class EventLog:
    """Columnar events; ``time_s`` counts seconds from the window start."""

    user: np.ndarray
    item: np.ndarray
    time_s: np.ndarray
    event: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    channel: np.ndarray

    @classmethod
    def concat(cls, logs: list[EventLog]) -> EventLog:
        names = ("user", "item", "time_s", "event", "quantity", "price", "channel")
        return cls(*(np.concatenate([getattr(g, n) for g in logs]) for n in names))

    def take(self, idx: np.ndarray) -> EventLog:
        return EventLog(self.user[idx], self.item[idx], self.time_s[idx], self.event[idx],
                        self.quantity[idx], self.price[idx], self.channel[idx])


def simulate(
    w: WorldConfig,
    rng: np.random.Generator,
    pop: Population,
    cat: Catalogue,
    start: np.datetime64,
    extra: Callable[[EventLog], EventLog] | None = None,
) -> pd.DataFrame:
    """All interactions of the window, sorted by time, in the canonical interactions schema;
    ``extra`` adds events derived from the session events (planted co-purchases)."""
    sessions = make_sessions(w, rng, pop, start)
    log = session_events(w, rng, pop, cat, sessions, CandidateSampler(w, cat),
                         UtilityModel.build(w, pop, cat, start))
    parts = [log, _repeats(w, rng, pop, cat, log)]
    log = EventLog.concat(parts if extra is None else [*parts, extra(log)])
    log = log.take(np.flatnonzero(log.time_s < w.n_days * DAY_S))
    return _to_frame(log, start, pop.table["user_id"], cat.table["item_id"])


def session_events(
    w: WorldConfig,
    rng: np.random.Generator,
    pop: Population,
    cat: Catalogue,
    sessions: Sessions,
    sampler: CandidateSampler,
    model: UtilityModel,
) -> EventLog:
    """The funnel events of ``sessions``: candidates, paid prices, utilities and the funnel's
    draws, block by block."""
    logs = []
    for lo in range(0, len(sessions), _BLOCK):
        block = sessions.block(lo, lo + _BLOCK)
        cand = sampler.sample(rng, block.intent)
        paid = paid_prices(w, rng, cat, cand)
        utility = session_utilities(w, model, pop, cat, block, cand, paid)
        logs.append(_funnel(w, rng, block, cand, paid, utility))
    return EventLog.concat(logs) if logs else _empty()


def _funnel(
    w: WorldConfig,
    rng: np.random.Generator,
    sess: Sessions,
    cand: np.ndarray,
    paid: np.ndarray,
    utility: np.ndarray,
) -> EventLog:
    f = w.funnel
    valid = np.isfinite(utility)
    n_valid = valid.sum(axis=1)
    n_views = np.minimum(1 + rng.poisson(w.sessions.views_mean - 1.0, len(sess)), n_valid)
    # Gumbel top-k = sequential softmax sampling without replacement.
    noisy = np.where(valid, utility + rng.gumbel(size=utility.shape), -np.inf)
    width = max(int(n_views.max(initial=0)), 1)
    order = np.argsort(-noisy, axis=1, kind="stable")[:, :width]
    viewed = np.arange(width)[None, :] < n_views[:, None]
    # Funnel rates hold at the expected utility of a softmax view; better items convert more.
    safe = np.where(valid, utility, -np.inf)
    p = np.exp(safe - safe.max(axis=1, keepdims=True, initial=-1e300))
    finite = np.where(valid, utility, 0.0)
    expected = (p * finite).sum(axis=1) / np.maximum(p.sum(axis=1), 1e-300)
    z = np.clip(np.take_along_axis(utility, order, 1) - expected[:, None], -6.0, 6.0)
    z = np.where(viewed, z, 0.0)
    shape = z.shape

    def step(prev: np.ndarray, rate: float, slope: float) -> np.ndarray:
        return prev & (rng.random(shape) < sigmoid(logit(rate) + slope * z))

    click = step(viewed, f.click, f.utility_slope)
    favorite = step(click, f.favorite, 0.0)
    cart = step(click, f.cart, f.utility_slope)
    purchase = step(cart, f.purchase, f.utility_slope)

    gaps = 15.0 + rng.exponential(45.0, shape)
    t_view = sess.time_s[:, None] + np.cumsum(gaps, axis=1) - gaps[:, :1]
    t_click = t_view + 3.0 + rng.exponential(10.0, shape)
    t_favorite = t_click + 2.0 + rng.exponential(20.0, shape)
    t_cart = t_click + 5.0 + rng.exponential(60.0, shape)
    t_purchase = t_cart + 20.0 + rng.exponential(120.0, shape)
    qty = _quantities(rng, f.multi_quantity_rate, shape)

    items = np.take_along_axis(cand, order, 1)
    price = np.take_along_axis(paid, order, 1)
    online = (sess.channel != STORE)[:, None]
    parts = []
    for code, mask, times, q in (
        (VIEW, viewed & online, t_view, None),
        (CLICK, click & online, t_click, None),
        (FAVORITE, favorite & online, t_favorite, None),
        (CART, cart & online, t_cart, qty),
        (PURCHASE, purchase, t_purchase, qty),
    ):
        rows, cols = np.nonzero(mask)
        parts.append(
            EventLog(
                user=sess.user[rows],
                item=items[rows, cols],
                time_s=np.floor(times[rows, cols]).astype(np.int64),
                event=np.full(len(rows), code, dtype=np.int64),
                quantity=np.ones(len(rows), np.int64) if q is None else q[rows, cols],
                price=price[rows, cols],
                channel=sess.channel[rows],
            )
        )
    return EventLog.concat(parts)


def _repeats(
    w: WorldConfig, rng: np.random.Generator, pop: Population, cat: Catalogue, log: EventLog
) -> EventLog:
    """Rounds of re-purchases of the same item, more likely for loyal users."""
    f, u = w.funnel, w.users
    src = log.take(np.flatnonzero(log.event == PURCHASE))
    out = [_empty()]
    mean_loyalty = u.loyalty_a / (u.loyalty_a + u.loyalty_b)
    for _ in range(f.max_repeats):
        p = np.clip(f.repeat_rate * pop.loyalty[src.user] / mean_loyalty, 0.0, 0.95)
        src = src.take(np.flatnonzero(rng.random(len(src.user)) < p))
        n = len(src.user)
        day = (src.time_s + (0.5 + rng.exponential(f.repeat_gap_days, n)) * DAY_S) // DAY_S
        time_s = (day * DAY_S + pop.active_hour[src.user] * 3600 + rng.integers(0, 3600, n))
        time_s = np.where(time_s <= src.time_s, time_s + DAY_S, time_s).astype(np.int64)
        src = EventLog(
            user=src.user,
            item=src.item,
            time_s=time_s,
            event=src.event,
            quantity=_quantities(rng, f.multi_quantity_rate, (n,)),
            price=paid_prices(w, rng, cat, src.item),
            channel=categorical_rows(rng, pop.channel_mix[src.user]),
        )
        src = src.take(np.flatnonzero(src.time_s < w.n_days * DAY_S))
        out.append(src)
    return EventLog.concat(out)


def _quantities(rng: np.random.Generator, multi_rate: float, shape: tuple[int, ...]) -> np.ndarray:
    """Mostly 1; a few multi-unit baskets."""
    extra = rng.geometric(0.6, shape)
    return np.where(rng.random(shape) < multi_rate, 1 + extra, 1).astype(np.int64)


def _empty() -> EventLog:
    i = np.zeros(0, np.int64)
    return EventLog(i, i, i, i, i, np.zeros(0, np.float64), i)


def _to_frame(log: EventLog, start: np.datetime64, user_ids: pd.Series, item_ids: pd.Series) -> pd.DataFrame:
    """The sorted log as a table; codes index ``user_ids`` / ``item_ids`` (the users' and items' ids)."""
    order = np.lexsort((log.event, log.item, log.user, log.time_s))
    log = log.take(order)
    ts = start.astype("datetime64[ns]") + log.time_s.astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "user_id": pd.Categorical.from_codes(log.user, user_ids).astype(str),
            "item_id": pd.Categorical.from_codes(log.item, item_ids).astype(str),
            "timestamp": ts.astype("datetime64[ns]"),
            "event": pd.Categorical.from_codes(log.event, list(FUNNEL)).astype(str),
            "quantity": log.quantity.astype(np.int64),
            "price": log.price.astype(np.float64),
            "channel": pd.Categorical.from_codes(log.channel, list(EVENT_CHANNELS)).astype(str),
        }
    )

