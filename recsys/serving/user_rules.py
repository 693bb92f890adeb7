"""One user's rule decisions in numpy: what :func:`recsys.rules.apply_rules` decides for a single
user's candidates, without its per-call pandas work (about 25 ms a request at 100k items).

Whatever depends only on the user or only on the item is decided once, with the engine's own
functions over the whole context: :class:`UserLevel` for every known user (promotion rule,
channel preference order, frequency cap, send time per channel, user-only conditions) and
:class:`ItemLevel` for every item (pricing, category codes, item-only conditions, the association
rules as codes). A request computes only what depends on its rows: row conditions, filters,
boosts, the per-user score transform, the ranking with the category cap and top k, the offer's
cost and the one user's channel within the channel budgets. A new user's user-level decisions
come from a one-row user table. The tests compare every decision with ``apply_rules``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import pandas as pd

from recsys.rules import RuleContext, RulesConfig
from recsys.rules.channels import channel_choices, contact_capped, send_times
from recsys.rules.conditions import Condition, Leaf, Not
from recsys.rules.config import NO_CHANNEL, NO_PROMOTION, BoostRule, FilterRule
from recsys.rules.explain import SOCIAL_IGNORED, SOCIAL_USED
from recsys.rules.frame import EvalFrame
from recsys.rules.pricing import NO_PRICING, price_items
from recsys.rules.ranking import category_codes, cumcount
from recsys.rules.scoring import DAY, apply_boost
from recsys.rules.validate import validate_rules

# the columns of the candidate rows a request brings (Recommender.candidates)
CANDIDATE_COLUMNS = ("user_idx", "item_idx", "item_id", "score", "rank", "base_score",
                     "behaviour_score", "image_score", "social_score")


@dataclass(frozen=True)
class Decision:
    """One user's plan, best first (row-aligned arrays, as ``apply_rules``'s rows of the user).

    ``rows``: positions in the candidates; ``score``: after boosts; ``social``: the social
    contribution the rules kept (0 without social-image consent)."""

    rows: np.ndarray
    item_idx: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    social: np.ndarray
    price: np.ndarray
    suggested_price: np.ndarray
    promotion: str
    channel: str
    send_time: np.datetime64
    rules_fired: list[list[str]]
    social_image: str

    def head(self, k: int) -> Decision:
        """The first ``k`` rows."""
        cut = {name: getattr(self, name)[:k] for name in (
            "rows", "item_idx", "rank", "score", "social", "price", "suggested_price",
            "rules_fired")}
        return replace(self, **cut)


def nodes(cond: Condition | None) -> Iterator[Condition]:
    """``cond`` and every condition inside it."""
    if cond is None:
        return
    yield cond
    if isinstance(cond, Not):
        yield from nodes(cond.item)
    elif not isinstance(cond, Leaf):
        for child in cond.items:
            yield from nodes(child)


@dataclass(frozen=True)
class UserLevel:
    """Decisions of each row of a user table that depend on the user alone."""

    masks: dict[Condition, np.ndarray]  # user-only conditions of filters and boosts
    promotion: np.ndarray  # rule id by priority, -1 none
    choices: np.ndarray  # [n, channels] eligible channel ids in order, padded with n_channels
    preferred: np.ndarray
    marketing: np.ndarray
    social: np.ndarray
    capped: np.ndarray
    send: np.ndarray  # [n, channels] send time on each channel

    @classmethod
    def of(cls, frame: EvalFrame, cfg: RulesConfig, conditions: list[Condition]) -> UserLevel:
        """The engine's user-level steps over every user of ``frame``'s context."""
        users = np.arange(len(frame.ctx.users))
        promotion = np.full(len(users), -1, dtype=np.int64)
        for i, rule in sorted(enumerate(cfg.promotions), key=lambda p: p[1].priority):
            promotion[(promotion < 0) & frame.mask(rule.when, "user")] = i
        choices, preferred = channel_choices(frame, cfg, users)
        send = np.stack([send_times(frame, cfg, users, np.full(len(users), j))
                         for j in range(len(cfg.channel_order))], axis=1)
        table = frame.ctx.users
        return cls({c: frame.mask(c, "user") for c in conditions}, promotion, choices, preferred,
                   table["marketing_consent"].to_numpy(dtype=bool),
                   table["social_image_consent"].to_numpy(dtype=bool),
                   contact_capped(frame, cfg, users), send)


@dataclass(frozen=True)
class _Association:
    """A cross-sell boost's association rules as codes (item positions or category codes)."""

    antecedents: list[tuple[int, ...]]
    consequents: list[np.ndarray]
    by_code: dict[int, list[int]]

    @classmethod
    def of(cls, rules: pd.DataFrame, labels: pd.Index) -> _Association:
        ante, cons = [], []
        for need, gives in zip(rules["antecedents"], rules["consequents"], strict=True):
            ante.append(tuple(labels.get_indexer(pd.Index([str(v) for v in need],
                                                          dtype=object)).tolist()))
            codes = labels.get_indexer(pd.Index([str(v) for v in gives], dtype=object))
            cons.append(codes[codes >= 0].astype(np.int64))
        by_code: dict[int, list[int]] = {}
        for i, need in enumerate(ante):
            for code in set(need):
                by_code.setdefault(code, []).append(i)
        return cls(ante, cons, by_code)

    def fired(self, owned: np.ndarray) -> np.ndarray:
        """Consequent codes of the rules whose antecedents are all in ``owned``."""
        have = set(owned.tolist())
        hits = {i for code in have for i in self.by_code.get(code, ())}
        out = [self.consequents[i] for i in sorted(hits)
               if self.antecedents[i] and all(c in have for c in self.antecedents[i])]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ItemLevel:
    """Decisions of each item that depend on the item alone."""

    masks: dict[Condition, np.ndarray]  # item-only conditions of filters and boosts
    price: np.ndarray
    pricing_rule: np.ndarray  # rule name per item (NO_PRICING: none)
    suggested_price: np.ndarray
    category: np.ndarray  # codes of caps.category_column (-1 missing)
    association_category: np.ndarray  # codes of the items' category among the rules' labels
    association: dict[int, dict[str, _Association]] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: EvalFrame, cfg: RulesConfig, conditions: list[Condition]) -> ItemLevel:
        items = frame.ctx.items
        pricing, _ = price_items(frame, cfg)
        assoc: dict[int, dict[str, _Association]] = {}
        cats = pd.Categorical(items["category"].astype("object")) if "category" in items else None
        item_labels = pd.Index(items["item_id"].astype(str).to_numpy(dtype=object))
        for bit, boost in enumerate(cfg.boosts):
            if boost.kind != "association":
                continue
            rules = frame.ctx.association[frame.ctx.association["lift"] >= boost.min_lift]
            assoc[bit] = {}
            if boost.level in ("item", "both"):
                assoc[bit]["item"] = _Association.of(rules[rules["level"] == "item"], item_labels)
            if boost.level in ("category", "both") and cats is not None:
                labels = pd.Index([str(c) for c in cats.categories], dtype=object)
                assoc[bit]["category"] = _Association.of(rules[rules["level"] == "category"],
                                                          labels)
        return cls({c: frame.mask(c, "item") for c in conditions},
                   items["price"].to_numpy(dtype=float, na_value=np.nan),
                   pricing["pricing_rule"].astype(str).to_numpy(dtype=object),
                   pricing["suggested_price"].to_numpy(dtype=float),
                   category_codes(frame, cfg.caps.category_column),
                   np.asarray(cats.codes, dtype=np.int64) if cats is not None
                   else np.full(len(items), -1, dtype=np.int64), assoc)


class _History:
    """Purchases by user as arrays (item, timestamp), sorted by user."""

    def __init__(self, history: pd.DataFrame) -> None:
        ordered = history.sort_values("user_idx", kind="stable")
        self.users = ordered["user_idx"].to_numpy(np.int64)
        self.items = ordered["item_idx"].to_numpy(np.int64)
        self.times = pd.DatetimeIndex(ordered["timestamp"])

    def of(self, user: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
        lo, hi = np.searchsorted(self.users, [user, user + 1])
        return self.items[lo:hi], self.times[lo:hi]


class _Rows:
    """A request's candidate columns where the engine expects a frame: each column becomes a
    Series when a row condition first reads it (most requests read none)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.columns = list(arrays)
        self._series: dict[str, pd.Series] = {}

    def __getitem__(self, name: str) -> pd.Series:
        if name not in self._series:
            self._series[name] = pd.Series(self.arrays[name])
        return self._series[name]

    def __len__(self) -> int:
        return len(self.arrays["item_idx"])


class _RequestFrame(EvalFrame):
    """The engine's frame over one request's rows, answering user-only and item-only
    conditions from the precomputed masks."""

    def __init__(self, rows: _Rows, ctx: RuleContext, user_pos: np.ndarray,
                 item_pos: np.ndarray, users: UserLevel, items: ItemLevel,
                 kinds: dict[tuple[str, str], str]) -> None:
        self.rows = cast(pd.DataFrame, rows)  # what the engine reads of a frame: [] and columns
        self.ctx = ctx
        self.tables = {"row": self.rows, "user": ctx.users, "item": ctx.items}
        self.user_pos = user_pos
        self.item_pos = item_pos
        self._kinds = dict(kinds)
        self._users, self._items = users, items

    def mask(self, cond: Condition, level: str = "row") -> np.ndarray:
        if level == "row":
            if cond in self._items.masks:
                return self._items.masks[cond][self.item_pos]
            if cond in self._users.masks:
                return self._users.masks[cond][self.user_pos]
        return super().mask(cond, level)


class UserRules:
    """The rules over a context, compiled for requests of one user (see the module)."""

    def __init__(self, rules: RulesConfig, context: RuleContext) -> None:
        self.rules = rules
        self.context = context
        template = pd.DataFrame({c: pd.Series(dtype=object if c == "item_id" else
                                              np.int64 if c.endswith(("_idx", "rank")) else float)
                                 for c in CANDIDATE_COLUMNS})
        self._template = template
        frame = EvalFrame(template, context)
        validate_rules(rules, frame)
        whens = [r.when for r in rules.filters] + [b.when for b in rules.boosts]
        conditions = [c for when in whens for c in nodes(when)]
        self.user_conditions = [c for c in conditions if frame.scope(c) == "user"]
        self.users = UserLevel.of(frame, rules, self.user_conditions)
        self.items = ItemLevel.of(frame, rules, [c for c in conditions
                                                 if frame.scope(c) == "item"])
        self.history = _History(context.history)
        for leaf in (c for c in conditions if isinstance(c, Leaf)):  # the engine's lazy kinds
            for name in (n for n in (leaf.column, leaf.ref) if n is not None):
                found = frame.resolve(name)
                if isinstance(found, tuple) and found[0] != "row":
                    frame.kind(name)
        self._kinds = dict(frame._kinds)
        self._new_kinds = {k: v for k, v in self._kinds.items() if k[0] != "user"}

    def decide(self, columns: Mapping[str, np.ndarray], user: int,
               new_user: pd.DataFrame | None = None,
               new_history: np.ndarray | None = None) -> Decision:
        """The plan of user ``user`` (a known user's row of the context) or of ``new_user`` (a
        one-row user table, with its purchases ``new_history`` made at the context's now) over
        its candidates' ``columns`` (:data:`CANDIDATE_COLUMNS`, as arrays)."""
        cfg = self.rules
        rows = _Rows(columns)
        item_pos = np.asarray(columns["item_idx"], dtype=np.int64)
        if new_user is None:
            ctx, users, u = self.context, self.users, user
            bought, when = self.history.of(user)
            kinds = self._kinds
        else:
            ctx = replace(self.context, users=new_user, contacts=None)
            users, u, kinds = UserLevel.of(EvalFrame(self._template, ctx), cfg,
                                           self.user_conditions), 0, self._new_kinds
            bought = np.asarray(new_history if new_history is not None else [], dtype=np.int64)
            when = pd.DatetimeIndex([ctx.now] * len(bought))
        frame = _RequestFrame(rows, ctx, np.full(len(rows), u, dtype=np.int64), item_pos,
                              users, self.items, kinds)
        raw = np.asarray(columns["score"], dtype=float)
        social_raw = np.asarray(columns["social_score"], dtype=float)
        consent = bool(users.social[u])
        social = np.where(np.full(len(rows), consent), social_raw, 0.0)
        effective = raw - social_raw + social
        base = effective
        if cfg.score_transform != "none" and len(rows):
            lo, hi = effective.min(), effective.max()
            with np.errstate(invalid="ignore", divide="ignore"):
                base = np.where(hi - lo > 0, (effective - lo) / (hi - lo), 1.0)
        keep = np.ones(len(rows), dtype=bool)
        for rule in cfg.filters:
            if rule.enabled:
                keep &= ~self._filter(rule, frame, bought, when)
        final = base.copy()
        fired = np.zeros(len(rows), dtype=np.int64)
        for bit, boost in enumerate(cfg.boosts):
            final, m = apply_boost(final, frame, boost, self._boost(bit, boost, frame, bought))
            fired |= m.astype(np.int64) << np.int64(bit)
        plan = self._rank(keep, final, item_pos)
        return self._plan(plan, item_pos[plan], final, social, fired, users, u, consent)

    def _filter(self, rule: FilterRule, frame: EvalFrame, bought: np.ndarray,
                when: pd.DatetimeIndex) -> np.ndarray:
        if rule.kind != "already_bought":
            assert rule.when is not None
            return frame.mask(rule.when)
        if rule.lookback_days is not None:
            bought = bought[np.asarray(when >= self.context.now - rule.lookback_days * DAY)]
        return np.isin(frame.item_pos, bought)

    def _boost(self, bit: int, boost: BoostRule, frame: EvalFrame, bought: np.ndarray
               ) -> np.ndarray:
        if boost.kind == "association":
            assoc = self.items.association[bit]
            owned = np.unique(bought)
            mask = np.zeros(len(frame.item_pos), dtype=bool)
            if "item" in assoc:
                mask |= np.isin(frame.item_pos, assoc["item"].fired(owned))
            if "category" in assoc:
                codes = self.items.association_category
                have = codes[owned]
                mask |= np.isin(codes[frame.item_pos], assoc["category"].fired(have[have >= 0]))
            return mask
        if boost.when is None:
            return np.ones(len(frame.item_pos), dtype=bool)
        return frame.mask(boost.when)

    def _rank(self, keep: np.ndarray, final: np.ndarray, item_pos: np.ndarray) -> np.ndarray:
        """Kept rows by final score (ties in candidate order), category cap, top k."""
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-final[idx], kind="stable")]
        cap = self.rules.caps.max_per_category
        if cap is not None:
            codes = self.items.category[item_pos[idx]]
            idx = idx[(cumcount(codes + 1) < cap) | (codes < 0)]
        return idx[: self.rules.top_k]

    def _plan(self, plan: np.ndarray, items: np.ndarray, final: np.ndarray,
              social: np.ndarray, fired: np.ndarray, users: UserLevel, u: int, consent: bool
              ) -> Decision:
        cfg = self.rules
        price = self.items.price[items]
        known = np.isfinite(price)
        starts = np.zeros(1, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_price = (np.add.reduceat(np.where(known, price, 0.0), starts)
                          / np.add.reduceat(known.astype(float), starts))[0] if len(plan) else 0.0
        promotion, budget_capped = self._promotion(int(users.promotion[u]), float(mean_price))
        channel, reason = self._channel(users, u)
        order = list(cfg.channel_order)
        send = users.send[u, channel] if channel < len(order) else np.datetime64("NaT", "ns")
        pricing = self.items.pricing_rule[items]
        extra = [promotion, "campaign_budget" if budget_capped else "",
                 {"frequency_cap": "frequency_cap", "budget_fallback": "channel_budget",
                  "budget_exhausted": "channel_budget"}.get(reason, "")]
        names = [b.name for b in cfg.boosts]
        fired_lists = []
        for bits, rule in zip(fired[plan].tolist(), pricing.tolist(), strict=True):
            labels = [n for b, n in enumerate(names) if bits >> b & 1]
            labels += [x for x in (extra[0], rule, *extra[1:]) if x not in ("", NO_PRICING)]
            fired_lists.append(labels)
        return Decision(plan, items, np.arange(1, len(plan) + 1), final[plan], social[plan],
                        price, self.items.suggested_price[items], promotion,
                        order[channel] if channel < len(order) else NO_CHANNEL, send, fired_lists,
                        SOCIAL_USED if consent else SOCIAL_IGNORED)

    def _promotion(self, rule: int, mean_price: float) -> tuple[str, bool]:
        """The user's offer, unless its expected cost passes the campaign budget."""
        cfg = self.rules
        if rule < 0:
            return NO_PROMOTION, False
        promo = cfg.promotions[rule]
        price = np.nan_to_num(np.float64(mean_price), nan=0.0)
        cost = cfg.caps.expected_redemption * (promo.depth * price + promo.fixed_cost)
        if cfg.caps.campaign_budget is not None and cost > cfg.caps.campaign_budget + 1e-12:
            return NO_PROMOTION, True
        return promo.name, False

    def _channel(self, users: UserLevel, u: int) -> tuple[int, str]:
        """The user's channel (id, n_channels: none) and reason, each channel's budget
        allowing ``budget // cost`` messages."""
        cfg = self.rules
        order = list(cfg.channel_order)
        c = len(order)
        choices = users.choices[u]
        assigned, got_round = c, -1
        if not users.capped[u]:
            for r in range(c):
                j = int(choices[r])
                opt = cfg.channels[order[j]] if j < c else None
                if opt is not None and (opt.cost <= 0
                                        or np.floor(opt.budget / opt.cost + 1e-9) >= 1):
                    assigned, got_round = j, r
                    break
        if not users.marketing[u]:
            reason = "no_marketing_consent"
        elif users.capped[u]:
            reason = "frequency_cap"
        elif got_round == 0:
            reason = "preferred" if assigned == users.preferred[u] else "order"
        elif got_round > 0:
            reason = "budget_fallback"
        elif choices[0] == c:
            reason = "no_eligible_channel"
        else:
            reason = "budget_exhausted"
        return assigned, reason

