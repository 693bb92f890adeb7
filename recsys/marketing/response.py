"""How users of the synthetic world respond to a campaign, from the world's own latent variables.

Per contacted user: P(open) = sigmoid(open_base[channel] + preferred_bonus * [channel is the
user's preferred one] - hour_penalty * |send hour - active hour| / 12) (hours on a circle).

Per plan row (user u, item i), the world's utility at the price the user would pay,
    U(p) = taste(u, i) + brand loyalty + popularity + season - price_sensitivity(u) * log(p / ref price),
drives P(buy) = sigmoid(organic_logit + log activity(u) + slope * (U(p) - U_ref) [+ lift]):
without an opened message p is the list price and there is no lift; with one, p is the discounted
price (coupon / member / direct discount: depth; points: points_value * depth) and the lift is
contact_lift (+ service_lift for a value-added service). ``slope`` is the world's funnel
utility_slope and U_ref the mean utility of a fixed sample of (user, item) pairs.

Revenue is gross sales: purchases at list price. Costs: the channel's message cost per send; for
purchases after an opened offer, the discount given (list - paid), points (depth * paid) and the
offer's fixed cost once per converted user. Revenue minus promotion cost is then what the user
paid less points and fixed costs (the discount is counted once, as a cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recsys.marketing.world import LatentWorld

OFFER_KINDS = ("none", "price", "points", "service")
PRICE_OFFERS = ("coupon", "member_discount", "direct_discount")
NONE, PRICE, POINTS, SERVICE = range(4)
_REF_PAIRS = 100_000


@dataclass(frozen=True)
class ResponseConfig:
    """simulate.yaml ``response``."""

    channels: tuple[str, ...]
    open_base: tuple[float, ...]      # per channel, same order
    preferred_bonus: float
    hour_penalty: float
    organic_logit: float
    contact_lift: float
    service_lift: float
    points_value: float


@dataclass(frozen=True)
class PlanArrays:
    """A plan as arrays: per contacted-or-held-out user and per row (rows grouped by user)."""

    user: np.ndarray        # world user position, per user
    channel: np.ndarray     # index into ResponseConfig.channels, -1: not sent (control)
    hour: np.ndarray        # send hour
    offer: np.ndarray       # NONE / PRICE / POINTS / SERVICE
    depth: np.ndarray
    fixed_cost: np.ndarray
    contact_cost: np.ndarray
    row_user: np.ndarray    # per row: index into the per-user arrays (non-decreasing)
    item: np.ndarray        # per row: world item position
    price: np.ndarray       # per row: list price
    day: int                # day index of the send (clipped to the world's window)


@dataclass(frozen=True)
class Response:
    """Per user: opened, converted, purchases, revenue, promotion cost; per row: bought."""

    opened: np.ndarray
    converted: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    promotion_cost: np.ndarray
    bought: np.ndarray


def reference_utility(world: LatentWorld, day: int) -> float:
    """Mean list-price utility over a fixed seeded sample of (user, item) pairs."""
    rng = np.random.default_rng([world.config.seed, 99])
    u = rng.integers(0, len(world.pop.loyalty), _REF_PAIRS)
    i = rng.integers(0, len(world.cat.price), _REF_PAIRS)
    return float(utility(world, u, i, world.cat.price[i], day).mean())


def utility(world: LatentWorld, user: np.ndarray, item: np.ndarray, paid: np.ndarray,
            day: int) -> np.ndarray:
    """The world's utility of items at prices ``paid`` (see the module docstring)."""
    m, cat, pop, u = world.model, world.cat, world.pop, world.config.utility
    return (m.log_colour[user, cat.colour[item]] + m.log_style[user, cat.style[item]]
            + m.log_category[user, cat.category[item]]
            + u.brand_loyalty * pop.loyalty[user] * (cat.brand[item] == pop.favourite_brand[user])
            + u.popularity * cat.popularity[item] + m.season[day, cat.category[item]]
            - pop.price_sensitivity[user] * np.log(paid / m.reference_price))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def open_probability(world: LatentWorld, cfg: ResponseConfig, p: PlanArrays) -> np.ndarray:
    """P(open) per user (0 when not sent)."""
    sent = p.channel >= 0
    ch = np.where(sent, p.channel, 0)
    names = np.asarray(cfg.channels, dtype=object)
    preferred = world.pop.table["preferred_channel"].to_numpy(dtype=object)[p.user] == names[ch]
    gap = np.abs(p.hour - world.pop.active_hour[p.user]) % 24
    gap = np.minimum(gap, 24 - gap)
    logit = (np.asarray(cfg.open_base)[ch] + cfg.preferred_bonus * preferred
             - cfg.hour_penalty * gap / 12.0)
    return np.where(sent, _sigmoid(logit), 0.0)


def buy_logits(world: LatentWorld, cfg: ResponseConfig, p: PlanArrays,
               u_ref: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: logit of P(buy | no opened message) and of P(buy | opened), the price paid when
    opened."""
    ru = p.row_user
    offer, depth = p.offer[ru], p.depth[ru]
    discount = np.where(offer == PRICE, depth, np.where(offer == POINTS, cfg.points_value * depth, 0.0))
    paid = np.where(offer == PRICE, p.price * (1.0 - depth), p.price)
    user = p.user[ru]
    slope = world.config.funnel.utility_slope
    z0 = slope * (utility(world, user, p.item, p.price, p.day) - u_ref)
    z0 += cfg.organic_logit + np.log(world.pop.activity)[user]
    # log(price (1 - d) / ref) = log(price / ref) + log(1 - d): the discount shifts the utility
    per_user = cfg.contact_lift + np.where(p.offer == SERVICE, cfg.service_lift, 0.0)
    z1 = z0 + per_user[ru] - slope * world.pop.price_sensitivity[user] * np.log1p(-discount)
    return z0, z1, paid


def respond(world: LatentWorld, cfg: ResponseConfig, p: PlanArrays, u_ref: float,
            u_open: np.ndarray, u_buy: np.ndarray) -> Response:
    """Outcomes for uniform draws ``u_open`` (per user) and ``u_buy`` (per row), vectorised."""
    opened = u_open < open_probability(world, cfg, p)
    z0, z1, paid_offer = buy_logits(world, cfg, p, u_ref)
    seen = opened[p.row_user]
    bought = u_buy < _sigmoid(np.where(seen, z1, z0))
    paid = np.where(seen, paid_offer, p.price)
    offer = p.offer[p.row_user]
    row_cost = np.where(seen & (offer == PRICE), p.price - paid, 0.0)
    row_cost += np.where(seen & (offer == POINTS), p.depth[p.row_user] * paid, 0.0)
    n = len(p.user)
    purchases = np.bincount(p.row_user, weights=bought, minlength=n)
    revenue = np.bincount(p.row_user, weights=bought * p.price, minlength=n)
    converted = purchases > 0
    cost = np.bincount(p.row_user, weights=bought * row_cost, minlength=n)
    cost += np.where(opened & converted & (p.offer != NONE), p.fixed_cost, 0.0)
    return Response(opened, converted, purchases.astype(np.int64), revenue, cost, bought)


@dataclass(frozen=True)
class Expected:
    """Exact expectations per user if sent as planned (treated) and if held out (control)."""

    p_treated: np.ndarray
    p_control: np.ndarray
    revenue_treated: np.ndarray
    revenue_control: np.ndarray
    promotion_cost_treated: np.ndarray


def expected(world: LatentWorld, cfg: ResponseConfig, p: PlanArrays, u_ref: float) -> Expected:
    """P(convert), expected revenue and promotion cost per user, without drawing anything."""
    z0, z1, paid = buy_logits(world, cfg, p, u_ref)
    p0, p1 = _sigmoid(z0), _sigmoid(z1)
    n, ru = len(p.user), p.row_user
    none0 = np.exp(np.bincount(ru, weights=np.log1p(-p0), minlength=n))
    none1 = np.exp(np.bincount(ru, weights=np.log1p(-p1), minlength=n))
    q = open_probability(world, cfg, p)
    offer = p.offer[ru]
    row_cost = np.where(offer == PRICE, p.price - paid, 0.0)
    row_cost += np.where(offer == POINTS, p.depth[ru] * paid, 0.0)
    rev0 = np.bincount(ru, weights=p0 * p.price, minlength=n)
    rev1 = np.bincount(ru, weights=p1 * p.price, minlength=n)
    cost1 = np.bincount(ru, weights=p1 * row_cost, minlength=n)
    cost1 += np.where(p.offer != NONE, p.fixed_cost * (1.0 - none1), 0.0)
    return Expected(q * (1.0 - none1) + (1.0 - q) * (1.0 - none0), 1.0 - none0,
                    q * rev1 + (1.0 - q) * rev0, rev0, q * cost1)


def respond_loop(world: LatentWorld, cfg: ResponseConfig, p: PlanArrays, u_ref: float,
                 u_open: np.ndarray, u_buy: np.ndarray) -> Response:
    """The same response model, one row at a time in plain Python (the benchmark's reference)."""
    m, cat, pop, w = world.model, world.cat, world.pop, world.config
    prefs = world.pop.table["preferred_channel"].tolist()
    n = len(p.user)
    opened = np.zeros(n, dtype=bool)
    purchases = np.zeros(n, dtype=np.int64)
    revenue, cost = np.zeros(n), np.zeros(n)
    bought = np.zeros(len(p.item), dtype=bool)
    for k in range(n):
        u = int(p.user[k])
        ch = int(p.channel[k])
        if ch >= 0:
            gap = abs(int(p.hour[k]) - int(pop.active_hour[u])) % 24
            gap = min(gap, 24 - gap)
            logit = (cfg.open_base[ch] + cfg.preferred_bonus * (prefs[u] == cfg.channels[ch])
                     - cfg.hour_penalty * gap / 12.0)
            opened[k] = u_open[k] < 1.0 / (1.0 + math.exp(-logit))
    for r in range(len(p.item)):
        k = int(p.row_user[r])
        u, i = int(p.user[k]), int(p.item[r])
        offer, depth, price = int(p.offer[k]), float(p.depth[k]), float(p.price[r])
        taste = (m.log_colour[u, cat.colour[i]] + m.log_style[u, cat.style[i]]
                 + m.log_category[u, cat.category[i]]
                 + w.utility.brand_loyalty * pop.loyalty[u] * (cat.brand[i] == pop.favourite_brand[u])
                 + w.utility.popularity * cat.popularity[i] + m.season[p.day, cat.category[i]])
        base = cfg.organic_logit + math.log(pop.activity[u])
        paid, lift, discount = price, 0.0, 0.0
        if opened[k]:
            lift = cfg.contact_lift + (cfg.service_lift if offer == SERVICE else 0.0)
            discount = depth if offer == PRICE else cfg.points_value * depth if offer == POINTS else 0.0
            paid = price * (1.0 - depth) if offer == PRICE else price
        util = taste - pop.price_sensitivity[u] * math.log(price * (1.0 - discount) / m.reference_price)
        prob = 1.0 / (1.0 + math.exp(-(base + w.funnel.utility_slope * (util - u_ref) + lift)))
        if u_buy[r] < prob:
            bought[r] = True
            purchases[k] += 1
            revenue[k] += price
            if opened[k] and offer == PRICE:
                cost[k] += price - paid
            elif opened[k] and offer == POINTS:
                cost[k] += depth * paid
    converted = purchases > 0
    for k in range(n):
        if opened[k] and converted[k] and p.offer[k] != NONE:
            cost[k] += p.fixed_cost[k]
    return Response(opened, converted, purchases, revenue, cost, bought)
