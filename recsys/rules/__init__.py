"""Marketing rules over retrieval candidates: filters, boosts, promotions, pricing, channels."""

from recsys.rules.config import RulesConfig, load_rules, parse_rules, rules_from_cfg
from recsys.rules.context import RuleContext, build_context
from recsys.rules.engine import RuleResult, apply_rules

__all__ = ["RuleContext", "RuleResult", "RulesConfig", "apply_rules", "build_context",
           "load_rules", "parse_rules", "rules_from_cfg"]
