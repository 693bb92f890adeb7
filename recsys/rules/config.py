"""The declarative rules config (Hydra group ``conf/rules``): typed, strictly parsed."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from recsys.config import as_dict
from recsys.errors import ConfigError, RuleError
from recsys.rules.conditions import Condition, parse_condition
from recsys.rules.conflicts import check_conflicts
from recsys.rules.fields import Fields

CHANNELS = ("app_push", "email", "sms", "social_ads")
NO_CHANNEL = "none"
NO_PROMOTION = "none"
OFFERS = ("coupon", "points", "member_discount", "direct_discount", "value_added_service")
SCORE_TRANSFORMS = ("none", "minmax_per_user")
TOP = ("top_k", "score_transform", "filters", "boosts", "promotions", "pricing", "channels", "caps")


@dataclass(frozen=True)
class FilterRule:
    """Drop (user, item) rows: where ``when`` holds, or (kind already_bought) already bought."""

    name: str
    kind: str
    when: Condition | None
    lookback_days: float | None
    enabled: bool


@dataclass(frozen=True)
class BoostRule:
    """Raise scores where ``when`` holds (kind condition) or on cross-sell pairs (association)."""

    name: str
    kind: str
    when: Condition | None
    multiply: float | None
    add: float | None
    add_column: str | None
    weight: float | None
    level: str | None
    min_lift: float | None


@dataclass(frozen=True)
class PromotionRule:
    """Offer of a user: the matching rule with the lowest priority number wins."""

    name: str
    priority: int
    when: Condition
    offer: str
    depth: float
    fixed_cost: float


@dataclass(frozen=True)
class PricingRule:
    """Price factor of an item: the matching rule with the lowest priority number wins."""

    name: str
    priority: int
    when: Condition
    factor: float


@dataclass(frozen=True)
class Guardrails:
    min_factor: float
    max_factor: float
    min_margin: float


@dataclass(frozen=True)
class ChannelOption:
    """A marketing channel: cost per message, budget, allowed send hours [start, end)."""

    name: str
    cost: float
    budget: float
    send_window: tuple[int, int]
    default_hour: int
    when: Condition | None
    enabled: bool


@dataclass(frozen=True)
class Caps:
    max_per_category: int | None
    category_column: str
    max_contacts: int | None
    contact_window_days: float
    campaign_budget: float | None
    expected_redemption: float


@dataclass(frozen=True)
class RulesConfig:
    """A validated rules config; ``raw`` keeps the plain mapping (for adjusted copies)."""

    top_k: int
    score_transform: str
    filters: tuple[FilterRule, ...]
    boosts: tuple[BoostRule, ...]
    promotions: tuple[PromotionRule, ...]
    pricing: tuple[PricingRule, ...]
    guardrails: Guardrails
    channel_order: tuple[str, ...]
    channels: dict[str, ChannelOption]
    caps: Caps
    raw: dict[str, Any] = field(repr=False, compare=False)
    source: str | None = None
    # preferred channel -> channel order for its users (replaces "preferred, then order")
    channel_routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def all_names(self) -> list[str]:
        groups: list[Any] = [self.filters, self.boosts, self.promotions, self.pricing]
        return [r.name for g in groups for r in g]


def _cond(f: Fields, key: str, required: bool) -> Condition | None:
    if not f.has(key):
        if required:
            f.fail("missing required field", key)
        return None
    return parse_condition(f.raw[key], f"{f.where}.{key}", f.source)


def _rule_list(raw: Mapping[str, Any], key: str, source: str | None) -> list[tuple[str, Any]]:
    items = raw.get(key) or []
    if not isinstance(items, list):
        raise RuleError(f"rules {key}: wrong type: expected a list", file=source)
    out = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        out.append((f"{key}[{i}]" + (f" {name!r}" if isinstance(name, str) else ""), item))
    return out


def _filter(where: str, raw: Any, source: str | None) -> FilterRule:
    f = Fields(raw, where, source, ("name", "kind", "when", "lookback_days", "enabled"))
    kind = f.choice("kind", ("condition", "already_bought"), "condition")
    when = _cond(f, "when", kind == "condition")
    if kind == "already_bought" and when is not None:
        f.fail("kind already_bought takes no 'when'", "when")
    return FilterRule(f.get("name", str), kind, when, f.opt("lookback_days", float),
                      f.opt("enabled", bool) is not False)


def _boost(where: str, raw: Any, source: str | None) -> BoostRule:
    f = Fields(raw, where, source, ("name", "kind", "when", "multiply", "add", "add_column",
                                     "weight", "level", "min_lift"))
    kind = f.choice("kind", ("condition", "association"), "condition")
    effects = [k for k in ("multiply", "add", "add_column") if f.has(k)]
    if len(effects) != 1:
        f.fail(f"needs exactly one of multiply, add, add_column (got {effects or 'none'})")
    if f.has("add_column") != f.has("weight"):
        f.fail("add_column and weight go together", "weight")
    if kind == "association":
        level = f.choice("level", ("item", "category", "both"))
        min_lift = f.get("min_lift", float)
        if f.has("when") or f.has("add_column"):
            f.fail("kind association takes multiply or add, and no 'when'")
    else:
        level, min_lift = None, None
        if f.has("level") or f.has("min_lift"):
            f.fail("level and min_lift belong to kind association")
    when = _cond(f, "when", kind == "condition" and not f.has("add_column"))
    multiply = f.opt("multiply", float)
    if multiply is not None and multiply <= 0:
        f.fail(f"multiply must be positive, got {multiply}", "multiply")
    return BoostRule(f.get("name", str), kind, when, multiply, f.opt("add", float),
                     f.opt("add_column", str), f.opt("weight", float), level, min_lift)


def _promotion(where: str, raw: Any, source: str | None) -> PromotionRule:
    f = Fields(raw, where, source, ("name", "priority", "when", "offer", "depth", "fixed_cost"))
    depth = f.get("depth", float)
    if not 0.0 <= depth < 1.0:
        f.fail(f"depth must be in [0, 1), got {depth}", "depth")
    fixed = f.get("fixed_cost", float)
    if fixed < 0:
        f.fail(f"fixed_cost must be >= 0, got {fixed}", "fixed_cost")
    when = _cond(f, "when", True)
    assert when is not None
    return PromotionRule(f.get("name", str), f.get("priority", int), when,
                         f.choice("offer", OFFERS), depth, fixed)


def _pricing(raw: Any, source: str | None) -> tuple[tuple[PricingRule, ...], Guardrails]:
    f = Fields(raw, "pricing", source, ("guardrails", "rules"))
    g = Fields(f.get("guardrails", dict), "pricing.guardrails", source,
               ("min_factor", "max_factor", "min_margin"))
    guard = Guardrails(g.get("min_factor", float), g.get("max_factor", float),
                       g.get("min_margin", float))
    if not 0 < guard.min_factor <= 1.0 <= guard.max_factor:
        g.fail("conflict: need 0 < min_factor <= 1 <= max_factor")
    rules = []
    for where, item in _rule_list(f.raw, "rules", source):
        r = Fields(item, f"pricing.{where}", source, ("name", "priority", "when", "factor"))
        factor = r.get("factor", float)
        if not guard.min_factor <= factor <= guard.max_factor:
            r.fail(f"conflict: factor {factor} is outside the guardrails "
                   f"[{guard.min_factor}, {guard.max_factor}]", "factor")
        when = _cond(r, "when", True)
        assert when is not None
        rules.append(PricingRule(r.get("name", str), r.get("priority", int), when, factor))
    return tuple(rules), guard


def _channels(raw: Any, source: str | None
              ) -> tuple[tuple[str, ...], dict[str, ChannelOption], dict[str, tuple[str, ...]]]:
    f = Fields(raw, "channels", source, ("order", "options", "routes"))
    options: dict[str, ChannelOption] = {}
    for name, body in f.get("options", dict).items():
        if name not in CHANNELS:
            f.fail(f"unknown channel {name!r} (expected one of: {', '.join(CHANNELS)})", "options")
        c = Fields(body, f"channels.options.{name}", source,
                   ("cost", "budget", "send_window", "default_hour", "when", "enabled"))
        start, end = (int(h) for h in c.number_list("send_window", 2))
        hour = c.get("default_hour", int)
        if not 0 <= start < end <= 24 or not 0 <= hour < 24:
            c.fail(f"need 0 <= start < end <= 24 and 0 <= default_hour < 24, got "
                   f"{[start, end]} / {hour}", "send_window")
        cost, budget = c.get("cost", float), c.get("budget", float)
        if cost < 0 or budget < 0:
            c.fail("cost and budget must be >= 0", "budget" if budget < 0 else "cost")
        options[name] = ChannelOption(name, cost, budget, (start, end), hour, _cond(c, "when", False),
                                      c.opt("enabled", bool) is not False)
    order = f.get("order", list)
    routes = {str(k): list(v) if isinstance(v, list) else v
              for k, v in (f.opt("routes", dict) or {}).items()}
    for key, listed in [("order", order), *((f"routes.{k}", v) for k, v in routes.items())]:
        if (not isinstance(listed, list) or sorted(listed) != sorted(set(listed))
                or set(listed) != set(options)):
            f.fail(f"conflict: {key} {listed} must list every channel of options once "
                   f"({sorted(options)})", key)
    return tuple(order), options, {k: tuple(v) for k, v in routes.items()}


def _caps(raw: Any, source: str | None) -> Caps:
    f = Fields(raw, "caps", source, ("max_per_category", "category_column", "max_contacts",
                                     "contact_window_days", "campaign_budget", "expected_redemption"))
    caps = Caps(f.opt("max_per_category", int), f.get("category_column", str),
                f.opt("max_contacts", int), f.get("contact_window_days", float),
                f.opt("campaign_budget", float), f.get("expected_redemption", float))
    for key in ("max_per_category", "max_contacts", "campaign_budget"):
        value = getattr(caps, key)
        if value is not None and value < (1 if key != "campaign_budget" else 0):
            f.fail(f"must be positive, got {value}", key)
    if not 0.0 <= caps.expected_redemption <= 1.0:
        f.fail("must be in [0, 1]", "expected_redemption")
    return caps


def parse_rules(raw: Any, source: str | None = None) -> RulesConfig:
    """Validate a plain rules mapping (types, fields, operators, static conflicts)."""
    f = Fields(raw, "<root>", source, TOP)
    top_k = f.get("top_k", int)
    if top_k < 1:
        f.fail(f"must be >= 1, got {top_k}", "top_k")
    filters = tuple(_filter(w, r, source) for w, r in _rule_list(f.raw, "filters", source))
    boosts = tuple(_boost(w, r, source) for w, r in _rule_list(f.raw, "boosts", source))
    promos = tuple(_promotion(w, r, source) for w, r in _rule_list(f.raw, "promotions", source))
    pricing, guard = _pricing(f.get("pricing", dict), source)
    order, channels, routes = _channels(f.get("channels", dict), source)
    cfg = RulesConfig(top_k, f.choice("score_transform", SCORE_TRANSFORMS), filters, boosts, promos,
                      pricing, guard, order, channels, _caps(f.get("caps", dict), source),
                      copy.deepcopy(dict(raw)), source, routes)
    check_conflicts(cfg)
    return cfg


def rules_from_cfg(cfg: DictConfig | Mapping[str, Any], source: str | None = None) -> RulesConfig:
    """Parse the composed Hydra ``rules`` node."""
    try:
        raw = as_dict(cfg, "rules")
    except OmegaConfBaseException as err:
        raise RuleError(f"rules: {err}", file=source) from None
    except ConfigError as err:
        raise RuleError(err.message, file=source) from None
    return parse_rules(raw, source)


def load_rules(path: Path | str) -> RulesConfig:
    """Read and validate a rules YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise RuleError(f"cannot read rules file ({err.strerror})", file=str(path)) from None
    except yaml.YAMLError as err:
        raise RuleError(f"malformed YAML: {err}".replace("\n", " "), file=str(path)) from None
    return parse_rules(raw, str(path))
