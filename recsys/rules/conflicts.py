"""Static conflict checks of a rules config (each raises RuleError naming both rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from recsys.errors import RuleError
from recsys.rules.conditions import Condition, canonical

# Names the engine itself uses in explanations and counts.
RESERVED = ("none", "category_diversity", "top_k", "frequency_cap", "campaign_budget", "channel_budget",
            "no_marketing_consent_channel")
MAX_BOOSTS = 60  # boosts are tracked in one int64 bit mask per row


class _Ranked(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def when(self) -> Condition: ...


class _Conditional(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def when(self) -> Condition | None: ...


class _Filter(_Conditional, Protocol):
    @property
    def enabled(self) -> bool: ...


class RuleSet(Protocol):
    """What the checks read of a rules config (:class:`recsys.rules.config.RulesConfig`)."""

    @property
    def all_names(self) -> list[str]: ...
    @property
    def source(self) -> str | None: ...
    @property
    def filters(self) -> Sequence[_Filter]: ...
    @property
    def boosts(self) -> Sequence[_Conditional]: ...
    @property
    def promotions(self) -> Sequence[_Ranked]: ...
    @property
    def pricing(self) -> Sequence[_Ranked]: ...


def _first_pair(keys: Sequence[str]) -> tuple[int, int] | None:
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            return seen[key], i
        seen[key] = i
    return None


def _ranked(rules: Sequence[_Ranked], section: str, source: str | None) -> None:
    pair = _first_pair([str(r.priority) for r in rules])
    if pair:
        a, b = rules[pair[0]], rules[pair[1]]
        raise RuleError(f"rules {section}: conflict: {a.name!r} and {b.name!r} share priority "
                        f"{a.priority}; priorities decide which rule wins and must differ",
                        file=source)
    pair = _first_pair([canonical(r.when) for r in rules])
    if pair:
        a, b = rules[pair[0]], rules[pair[1]]
        raise RuleError(f"rules {section}: conflict: {a.name!r} and {b.name!r} have the same "
                        "condition, so one of them can never apply", file=source)


def check_conflicts(cfg: RuleSet) -> None:
    """Duplicate or reserved names, equal priorities, shadowed or contradictory rules."""
    names = cfg.all_names
    pair = _first_pair(names)
    if pair:
        raise RuleError(f"rules: conflict: rule name {names[pair[0]]!r} is used twice",
                        file=cfg.source)
    reserved = [n for n in names if n in RESERVED]
    if reserved:
        raise RuleError(f"rules: rule name {reserved[0]!r} is reserved ({', '.join(RESERVED)})",
                        file=cfg.source)
    _ranked(cfg.promotions, "promotions", cfg.source)
    _ranked(cfg.pricing, "pricing.rules", cfg.source)
    filters = {canonical(r.when): r.name for r in cfg.filters if r.when is not None and r.enabled}
    for boost in cfg.boosts:
        if boost.when is not None and canonical(boost.when) in filters:
            raise RuleError(f"rules: conflict: boost {boost.name!r} has the same condition as "
                            f"filter {filters[canonical(boost.when)]!r}, which removes those rows",
                            file=cfg.source)
    if len(cfg.boosts) > MAX_BOOSTS:
        raise RuleError(f"rules boosts: at most {MAX_BOOSTS} boosts, got {len(cfg.boosts)}",
                        file=cfg.source)
